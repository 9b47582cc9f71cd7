import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { RingBuffer, streamKey, type Candle } from '../machine-runtime/candles';
import { TraderEngine } from '../machine-runtime/engine';
import { StreamState } from '../machine-runtime/indicators';
import {
  isGroup,
  operandsOf,
  traderDefinitionSchema,
  type Condition,
  type FilterGroup,
  type Operand,
} from '../machine-runtime/trader-schema';
import type { RecordedMarket } from './runtime-market';
import { makeTraders } from './runtime-traders';

// --- the naive baseline: every indicator recomputed from the whole buffer on every candle ----------
function naiveEval(g: FilterGroup, s: StreamState): boolean {
  const test = (n: Condition | FilterGroup): boolean => (isGroup(n) ? naiveEval(n, s) : naiveCond(n, s));
  return 'all' in g ? g.all.every(test) : g.any.some(test);
}
function naiveCond(c: Condition, s: StreamState): boolean {
  const read = (o: Operand | number, which: 0 | 1) => (typeof o === 'number' ? o : s.value(o, which));
  const l = read(c.left, 0);
  const r = read(c.right, 0);
  if (l === null || r === null) return false;
  if (c.op === '>') return l > r;
  if (c.op === '>=') return l >= r;
  if (c.op === '<') return l < r;
  if (c.op === '<=') return l <= r;
  const lp = read(c.left, 1);
  const rp = read(c.right, 1);
  if (lp === null || rp === null) return false;
  return c.op === 'crossesAbove' ? lp <= rp && l > r : lp >= rp && l < r;
}

/** Engine-only candles/s, incremental vs from-scratch, on the same traders and recorded candles, side by side. */
export function compareWithNaive(opts: {
  market: RecordedMarket;
  traders: number;
  minutes: number;
  naiveCandles: number;
}) {
  const { market } = opts;
  const traders = makeTraders(opts.traders, market.symbols, randomUUID());
  const defs = traders.map((t) => ({ t, def: traderDefinitionSchema.parse(t.definition) }));
  let fired = 0;
  const engine = new TraderEngine({ onFire: () => fired++ });
  engine.setTraders(traders);
  const byStream = new Map<string, { buffer: RingBuffer<Candle>; defs: typeof defs; operands: Operand[] }>();
  for (const d of defs)
    for (const s of d.def.symbols) {
      const key = streamKey(s, d.def.interval);
      const e = byStream.get(key) ?? { buffer: new RingBuffer<Candle>(500), defs: [], operands: [] };
      e.defs.push(d);
      e.operands.push(...operandsOf(d.def.filter));
      byStream.set(key, e);
    }
  for (const batch of market.history()) {
    engine.onClosed(batch, false);
    for (const c of batch) byStream.get(streamKey(c.symbol, c.interval))?.buffer.push(c);
  }
  const steps = Array.from({ length: opts.minutes }, (_, m) => market.closesAt(m));
  const total = steps.reduce((a, s) => a + s.length, 0);
  const t0 = performance.now();
  for (const step of steps) engine.onClosed(step, true);
  const incrementalRate = total / ((performance.now() - t0) / 1000);

  const sample = steps
    .flat()
    .filter((c) => byStream.has(streamKey(c.symbol, c.interval)))
    .slice(0, opts.naiveCandles);
  let naiveFired = 0;
  const t1 = performance.now();
  for (const c of sample) {
    const e = byStream.get(streamKey(c.symbol, c.interval))!;
    e.buffer.push(c);
    const state = new StreamState(500);
    state.require(e.operands);
    for (const b of e.buffer.toArray()) state.add(b);
    for (const d of e.defs) if (naiveEval(d.def.filter, state)) naiveFired++;
  }
  const naiveRate = sample.length / ((performance.now() - t1) / 1000);
  return { incrementalRate, naiveRate, ratio: incrementalRate / naiveRate, fired, naiveFired };
}
