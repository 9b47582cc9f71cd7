import type { Trader } from '../store/types';
import { streamKey, type Candle } from './candles';
import { StreamState, operandKey } from './indicators';
import {
  isGroup,
  operandsOf,
  traderDefinitionSchema,
  type Condition,
  type FilterGroup,
  type Operand,
  type TraderDefinition,
} from './trader-schema';

export interface LoadedTrader {
  id: string;
  name: string;
  updatedAt: number;
  def: TraderDefinition;
  operands: Operand[];
  /** Filter result on the previous closed candle, per symbol (for `fireOn: 'change'`). */
  lastResult: Map<string, boolean>;
}

export interface Firing {
  trader: { id: string; name: string };
  candle: Candle;
  /** Every value the filter read, so a signal explains itself. */
  values: Record<string, number | null>;
}

export interface EngineOptions {
  /** Candles kept per symbol × interval; also the longest `change` lookback. */
  candleCapacity?: number;
  onFire: (f: Firing) => void;
  /** Closed candles after evaluation (browsers' `candle` messages). */
  onCandle?: (c: Candle, evaluated: boolean) => void;
}

const recentFiringsLimit = 10_000;

/** Traders over shared per-stream indicators, evaluated once per closed candle. */
export class TraderEngine {
  private traders: LoadedTrader[] = [];
  private readonly byStream = new Map<string, LoadedTrader[]>();
  private readonly states = new Map<string, StreamState>();
  /** A second guard against double firing, bounded (insertion order = age). */
  private readonly recentFirings = new Set<string>();
  readonly stats = { evaluations: 0, candles: 0, ignoredCandles: 0, lastEvaluationAt: 0, firings: 0 };
  private readonly capacity: number;

  constructor(private readonly opts: EngineOptions) {
    this.capacity = opts.candleCapacity ?? 500;
  }

  /** Validates and installs traders; returns the ones refused and why. Unchanged traders keep their state. */
  setTraders(rows: Trader[]): { loaded: number; invalid: { id: string; name: string; error: string }[] } {
    const invalid: { id: string; name: string; error: string }[] = [];
    const previous = new Map(this.traders.map((t) => [t.id, t]));
    const next: LoadedTrader[] = [];
    for (const row of rows) {
      if (!row.enabled) continue;
      const parsed = traderDefinitionSchema.safeParse(row.definition);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        invalid.push({ id: row.id, name: row.name, error: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}` });
        continue;
      }
      const updatedAt = row.updatedAt.getTime();
      const old = previous.get(row.id);
      if (old && old.updatedAt === updatedAt) {
        next.push(old);
        continue;
      }
      next.push({
        id: row.id,
        name: row.name,
        updatedAt,
        def: parsed.data,
        operands: operandsOf(parsed.data.filter),
        lastResult: new Map(),
      });
    }
    this.traders = next;
    this.byStream.clear();
    for (const t of next) {
      for (const symbol of t.def.symbols) {
        const key = streamKey(symbol, t.def.interval);
        this.byStream.set(key, [...(this.byStream.get(key) ?? []), t]);
      }
    }
    for (const key of this.states.keys()) if (!this.byStream.has(key)) this.states.delete(key);
    for (const [key, traders] of this.byStream) {
      const operands = traders.flatMap((t) => t.operands);
      const state = this.states.get(key) ?? new StreamState(this.capacity);
      this.states.set(key, state);
      state.retain(operands);
      state.require(operands);
      // A new or edited trader starts from what the data says now, so it fires on the next change only.
      const symbol = key.split('|')[0]!;
      for (const t of traders) {
        if (!t.lastResult.has(symbol) && state.candles.size > 0) t.lastResult.set(symbol, this.evaluate(t, state));
      }
    }
    return { loaded: next.length, invalid };
  }

  /** The `SYMBOL|interval` keys the enabled traders need. */
  streams(): string[] {
    return [...this.byStream.keys()];
  }

  traderCount(): number {
    return this.traders.length;
  }

  streamState(key: string): StreamState | undefined {
    return this.states.get(key);
  }

  /**
   * Feeds closed candles in order. `evaluate: false` (warm-up history) updates indicators and the
   * change state without firing. Candles not newer than the last one are ignored.
   */
  onClosed(candles: Candle[], evaluate: boolean): void {
    for (const c of candles) {
      const key = streamKey(c.symbol, c.interval);
      const state = this.states.get(key);
      const last = state?.lastOpenTime;
      if (!state || (last !== undefined && c.openTime <= last)) {
        this.stats.ignoredCandles++;
        continue;
      }
      state.add(c);
      this.stats.candles++;
      for (const t of this.byStream.get(key) ?? []) {
        const result = this.evaluate(t, state);
        this.stats.evaluations++;
        const was = t.lastResult.get(c.symbol) ?? false;
        t.lastResult.set(c.symbol, result);
        if (!evaluate || !result || (t.def.fireOn === 'change' && was)) continue;
        this.fire(t, state, c);
      }
      this.stats.lastEvaluationAt = Date.now();
      this.opts.onCandle?.(c, evaluate);
    }
  }

  private fire(t: LoadedTrader, state: StreamState, c: Candle): void {
    const id = `${t.id}|${c.symbol}|${c.interval}|${c.openTime}`;
    if (this.recentFirings.has(id)) return;
    this.recentFirings.add(id);
    if (this.recentFirings.size > recentFiringsLimit) {
      this.recentFirings.delete(this.recentFirings.values().next().value!);
    }
    const values: Record<string, number | null> = {};
    for (const o of t.operands) values[operandKey(o)] = state.value(o);
    this.stats.firings++;
    this.opts.onFire({ trader: { id: t.id, name: t.name }, candle: c, values });
  }

  recentFiringsSize(): number {
    return this.recentFirings.size;
  }

  private evaluate(t: LoadedTrader, state: StreamState): boolean {
    return evalGroup(t.def.filter, state);
  }
}

function evalGroup(g: FilterGroup, s: StreamState): boolean {
  const test = (n: Condition | FilterGroup) => (isGroup(n) ? evalGroup(n, s) : evalCondition(n, s));
  return 'all' in g ? g.all.every(test) : g.any.some(test);
}

function evalCondition(c: Condition, s: StreamState): boolean {
  const read = (o: Operand | number, which: 0 | 1) => (typeof o === 'number' ? o : s.value(o, which));
  const l = read(c.left, 0);
  const r = read(c.right, 0);
  if (l === null || r === null) return false;
  switch (c.op) {
    case '>':
      return l > r;
    case '>=':
      return l >= r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case 'crossesAbove':
    case 'crossesBelow': {
      const lp = read(c.left, 1);
      const rp = read(c.right, 1);
      if (lp === null || rp === null) return false;
      return c.op === 'crossesAbove' ? lp <= rp && l > r : lp >= rp && l < r;
    }
  }
}
