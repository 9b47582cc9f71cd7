import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { mintAccessToken } from '../api/auth';
import { createRuntime } from '../machine-runtime/app';
import { RingBuffer, intervalMs, streamKey, type Candle } from '../machine-runtime/candles';
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
import type { NewSignal, SignalRow, Trader, UserStore } from '../store/types';
import { envInt, mb, median, percentile, report, round, sleep, type Row } from './lib/report';

const INTERVALS = ['1m', '5m', '15m'];
const WARMUP = 300;
const BASE_TIME = Date.parse('2025-01-01T00:00:00Z');
const now = () => performance.timeOrigin + performance.now();

/** Deterministic PRNG (mulberry32), so every run sees the same market. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Synthetic candles: a random walk per symbol × interval, generated on the fly (nothing stored). */
class Market {
  private readonly price = new Map<string, number>();
  private readonly rand = rng(42);
  constructor(readonly symbols: string[]) {}
  candle(symbol: string, interval: string, index: number): Candle {
    const key = streamKey(symbol, interval);
    const open = this.price.get(key) ?? 100 + this.rand() * 100;
    const close = open * Math.exp((this.rand() - 0.5) * 0.01);
    this.price.set(key, close);
    const ms = intervalMs(interval);
    const openTime = BASE_TIME + index * ms;
    return {
      symbol,
      interval,
      openTime,
      closeTime: openTime + ms - 1,
      open,
      high: Math.max(open, close) * (1 + this.rand() * 0.002),
      low: Math.min(open, close) * (1 - this.rand() * 0.002),
      close,
      volume: 1000 * Math.exp(this.rand() * 2),
    };
  }
  /** One candle close on every stream: what the runtime sees at a 15-minute boundary. */
  round(index: number): Candle[] {
    const out: Candle[] = [];
    for (const interval of INTERVALS) for (const s of this.symbols) out.push(this.candle(s, interval, index));
    return out;
  }
}

/** 50 users' worth of traders: the usual filter shapes with varied periods, 100 symbols each. */
export function makeTraders(count: number, symbols: string[], userId: string): Trader[] {
  const shapes = (i: number): FilterGroup => {
    const p = 10 + (i % 7);
    switch (i % 5) {
      case 0:
        return { all: [{ left: { indicator: 'rsi', period: p }, op: '<', right: 35 }] };
      case 1:
        return {
          all: [
            { left: { indicator: 'ema', period: p }, op: 'crossesAbove', right: { indicator: 'ema', period: 2 * p } },
          ],
        };
      case 2:
        return {
          all: [
            { left: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'histogram' }, op: '>', right: 0 },
            { left: { indicator: 'price', field: 'close' }, op: '>', right: { indicator: 'sma', period: 5 * p } },
          ],
        };
      case 3:
        return {
          any: [
            {
              left: { indicator: 'price', field: 'close' },
              op: '<',
              right: { indicator: 'bollinger', period: 2 * p, stdDev: 2, output: 'lower' },
            },
            { left: { indicator: 'atr', period: p }, op: '>', right: 2 },
          ],
        };
      default:
        return {
          all: [
            { left: { indicator: 'volumeRatio', period: 2 * p }, op: '>', right: 2 },
            { left: { indicator: 'change', period: 5 }, op: '>', right: 0.5 },
          ],
        };
    }
  };
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    userId,
    name: `trader ${i}`,
    enabled: true,
    updatedAt: new Date(BASE_TIME),
    definition: {
      symbols: Array.from({ length: Math.min(100, symbols.length) }, (_, k) => symbols[(i * 37 + k) % symbols.length]!),
      interval: INTERVALS[i % INTERVALS.length],
      filter: shapes(i),
      fireOn: 'change',
    },
  }));
}

/** Stores nothing: the runtime's store is Postgres behind the network, not what this measures. */
class NullStore implements UserStore {
  constructor(
    readonly userId: string,
    private readonly traders: Trader[],
  ) {}
  async listTraders() {
    return this.traders;
  }
  async insertSignal(s: NewSignal) {
    const row = { id: randomUUID(), userId: this.userId, firedAt: new Date(), ...s } as SignalRow;
    return { inserted: true, signal: row };
  }
  async listSignals() {
    return [];
  }
  async getMachine() {
    return null;
  }
}

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

/** Engine-only candles/s, incremental vs from-scratch, on the same traders and candles, side by side. */
export function compareWithNaive(opts: { symbols: number; traders: number; rounds: number; naiveCandles: number }) {
  const symbols = Array.from({ length: opts.symbols }, (_, i) => `SYM${i}USDT`);
  const traders = makeTraders(opts.traders, symbols, randomUUID());
  const defs = traders.map((t) => ({ t, def: traderDefinitionSchema.parse(t.definition) }));
  const market = new Market(symbols);
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
  for (let i = 0; i < WARMUP; i++) {
    const round = market.round(i);
    engine.onClosed(round, false);
    for (const c of round) byStream.get(streamKey(c.symbol, c.interval))?.buffer.push(c);
  }
  const rounds = Array.from({ length: opts.rounds }, (_, r) => market.round(WARMUP + r));
  const t0 = performance.now();
  for (const round of rounds) engine.onClosed(round, true);
  const incrementalRate = (rounds.length * rounds[0]!.length) / ((performance.now() - t0) / 1000);

  const naiveInput = rounds.flat().filter((c) => byStream.has(streamKey(c.symbol, c.interval)));
  const sample = naiveInput.slice(0, opts.naiveCandles);
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

/**
 * The full path inside one machine: closed candles → engine (50 traders over shared incremental
 * indicators) → signals (sink, null store) → 100 WebSocket clients on /ws, the clients in a child
 * process. Candles are handed to the engine the way the feed hands them over (`onClosed`), so Binance
 * frame parsing is not in the figure.
 */
export async function runRuntime(opts: {
  symbols: number;
  traders: number;
  clients: number;
  rounds: number;
  latencyRounds: number;
  naiveCandles: number;
}) {
  const userId = randomUUID();
  const symbols = Array.from({ length: opts.symbols }, (_, i) => `SYM${i}USDT`);
  const traders = makeTraders(opts.traders, symbols, userId);
  const secret = 'bench-runtime-secret-0123456789abcdef';
  const token = await mintAccessToken({ jwtSecret: secret, userId, ttlSeconds: 3600 });
  const rssBefore = process.memoryUsage().rss;
  const rt = await createRuntime({
    config: { userId, userToken: token, binanceWsUrl: 'ws://127.0.0.1:9', binanceRestUrl: 'http://127.0.0.1:9' },
    store: new NullStore(userId, traders),
    log: pino({ level: 'silent' }),
    verifyToken: async () => ({ ok: true, expiresAt: Date.now() + 3600_000 }),
  });
  // Traders straight into the engine: the feed would otherwise dial Binance (nothing to reach here).
  const loaded = rt.engine.setTraders(await new NullStore(userId, traders).listTraders());
  if (loaded.invalid.length) throw new Error(`invalid traders: ${JSON.stringify(loaded.invalid)}`);
  await rt.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (rt.app.server.address() as AddressInfo).port;

  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const child = fork(resolve(__dirname, 'runtime-clients.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      BENCH_WS_URL: `ws://127.0.0.1:${port}/ws`,
      BENCH_TOKEN: token,
      BENCH_CLIENTS: String(opts.clients),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T>(type: string) =>
    new Promise<T>((res) => {
      const on = (m: { type: string }) => {
        if (m.type !== type) return;
        child.off('message', on);
        res(m as T);
      };
      child.on('message', on);
      if (type !== 'ready') child.send({ type });
    });
  try {
    await ask('ready');
    const market = new Market(symbols);
    for (let i = 0; i < WARMUP; i++) rt.engine.onClosed(market.round(i), false); // REST warm-up's effect
    await ask('reset');

    // Throughput: rounds back to back, yielding between rounds so sockets drain, until all is delivered.
    const firedBefore = rt.engine.stats.firings;
    const candlesBefore = rt.engine.stats.candles;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let fed = 0;
    for (let r = 0; r < opts.rounds; r++) {
      const round = market.round(WARMUP + r);
      rt.engine.onClosed(round, true);
      fed += round.length;
      await new Promise((res) => setImmediate(res));
    }
    const engineDoneS = (performance.now() - t0) / 1000;
    const signals = rt.engine.stats.firings - firedBefore;
    let got = await ask<{ received: number; closed: number }>('count');
    // Only candles of streams some trader follows reach the clients.
    const broadcast = rt.engine.stats.candles - candlesBefore;
    const expected = () => (broadcast + signals) * (opts.clients - got.closed);
    while (got.received < expected() && performance.now() - t0 < 120_000) {
      await sleep(5);
      got = await ask('count');
    }
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;

    // Latency: a burst of every stream's close every 250 ms, as candles close together at a boundary.
    child.send({ type: 'record' });
    const burstStart = new Map<string, number>();
    const handedAt = new Map<string, number>();
    for (let r = 0; r < opts.latencyRounds; r++) {
      const round = market.round(WARMUP + opts.rounds + r);
      const t = now();
      for (const c of round) {
        const key = `${c.symbol}|${c.interval}|${c.openTime}`;
        burstStart.set(key, t);
        handedAt.set(key, now());
        rt.engine.onClosed([c], true);
      }
      await sleep(250);
    }
    await sleep(500);
    const { arrivals } = await ask<{ arrivals: [string, number][] }>('arrivals');
    const fromClose = arrivals.map(([k, t]) => t - burstStart.get(k)!);
    const fromHandover = arrivals.map(([k, t]) => t - handedAt.get(k)!);
    const final = await ask<{ received: number; closed: number }>('count');
    clearInterval(sampler);
    const maxRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);

    const naive = compareWithNaive({
      symbols: opts.symbols,
      traders: opts.traders,
      rounds: Math.max(5, Math.floor(opts.rounds / 5)),
      naiveCandles: opts.naiveCandles,
    });
    return {
      rows: [
        { figure: 'candles in (closed klines), throughput phase', value: fed },
        { figure: 'signals fired', value: signals },
        { figure: 'WebSocket frames delivered to clients', value: got.received },
        { figure: 'clients dropped (slow consumer)', value: final.closed },
        { figure: 'wall s (until all delivered)', value: round(wallS, 2) },
        { figure: 'engine done after s', value: round(engineDoneS, 2) },
        { figure: 'runtime CPU s (main process)', value: round(cpuS, 2) },
        { figure: 'candles / s per core (runtime CPU)', value: Math.round(fed / cpuS) },
        { figure: 'frames out / s (wall)', value: Math.round(got.received / wallS) },
        { figure: 'candle close → client p50 ms (burst of all streams)', value: round(median(fromClose), 2) },
        { figure: 'candle close → client p99 ms (burst of all streams)', value: round(percentile(fromClose, 99), 2) },
        { figure: 'handover → client p50 ms (per candle)', value: round(median(fromHandover), 2) },
        { figure: 'handover → client p99 ms (per candle)', value: round(percentile(fromHandover, 99), 2) },
        { figure: 'peak RSS MB (runtime process)', value: mb(maxRss) },
        { figure: 'RSS MB before the runtime was built', value: mb(rssBefore) },
        { figure: 'heap used MB at the end', value: mb(process.memoryUsage().heapUsed) },
        { figure: 'engine only: incremental candles / s', value: Math.round(naive.incrementalRate) },
        { figure: 'engine only: naive (recompute from scratch) candles / s', value: Math.round(naive.naiveRate) },
        { figure: 'incremental / naive', value: `${round(naive.ratio, 0)}×` },
      ] as Row[],
      perCore: fed / cpuS,
      p99: percentile(fromClose, 99),
      peakRssMb: mb(maxRss),
      ratio: naive.ratio,
    };
  } finally {
    clearInterval(sampler);
    child.send({ type: 'close' });
    await new Promise((r) => child.once('exit', r));
    await rt.stop();
  }
}

async function main() {
  const startLoad = os.loadavg();
  const symbols = envInt('BENCH_SYMBOLS', 300);
  const r = await runRuntime({
    symbols,
    traders: envInt('BENCH_TRADERS', 50),
    clients: envInt('BENCH_CLIENTS', 100),
    rounds: envInt('BENCH_ROUNDS', 30),
    latencyRounds: envInt('BENCH_LATENCY_ROUNDS', 5),
    naiveCandles: envInt('BENCH_NAIVE_CANDLES', 300),
  });
  report('runtime', {
    title: `runtime: ${symbols} symbols × ${INTERVALS.length} intervals, 50 traders, 100 WebSocket clients`,
    startLoad,
    tables: [{ rows: r.rows }],
    notes: [
      `Targets: ≥ 100k msgs/s/core ${r.perCore >= 100_000 ? 'met' : 'MISSED'} (${Math.round(r.perCore)}); p99 ≤ 10 ms ${r.p99 <= 10 ? 'met' : 'MISSED'} (${round(r.p99, 2)}); RSS ≤ 150 MB ${r.peakRssMb <= 150 ? 'met' : 'MISSED'} (${r.peakRssMb}).`,
      'A "message" is one closed kline handed to the engine (the feed\'s onClosed); each yields one candle frame per client plus signal frames. Engine fed directly: Binance frame parsing and REST warm-up are not in the figures.',
      'Synthetic random-walk candles for SYM0USDT…; warm-up 300 candles per stream; candle buffer 500. Clients run in a child process; CPU is the runtime process only (its ws writes included).',
      'p50/p99 "candle close → client": every stream closes at once (a burst of all streams every 250 ms), measured at the slowest of 5 timed clients.',
    ],
  });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
