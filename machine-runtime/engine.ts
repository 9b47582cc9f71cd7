import type { Trader } from '../store/types';
import { parseStreamKey, streamKey, type Candle } from './candles';
import { StreamState, operandKey, type Slot } from './indicators';
import { defaultBudget, fitToBudget, type MachineBudget } from './trader-limits';
import {
  isGroup,
  operandsOf,
  parseTraderDefinition,
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
  /** `operandKey` of each operand, in order: the names of a firing's `values`. */
  operandKeys: string[];
}

/** One trader on one stream: its filter compiled against that stream's indicator slots. */
interface Binding {
  trader: LoadedTrader;
  test: () => boolean;
  /** Filter result on the previous closed candle (for `fireOn: 'change'`). */
  last: boolean;
  /** `fireOn: 'change'`: read per binding per candle, so kept here rather than three loads away. */
  onChange: boolean;
  /** The slot of each of the trader's operands on this stream (`state.value` of a firing, without lookups). */
  slots: Readonly<Slot>[];
}

/** A followed stream: its candles and indicators, and the traders that watch it. */
interface Stream {
  state: StreamState;
  bindings: Binding[];
}

export interface Firing {
  trader: { id: string; name: string };
  candle: Candle;
  /** Every value the filter read, so a signal explains itself. */
  values: Record<string, number | null>;
  /**
   * A close evaluated again after a restart (catch-up): the previous process may have stored and
   * sent it already, so it goes to browsers only once the store says it is new.
   */
  replayed?: boolean;
}

export interface EngineOptions {
  /** Candles kept per symbol × interval; also the longest `change` lookback. */
  candleCapacity?: number;
  onFire: (f: Firing) => void;
  /** Closed candles after evaluation (browsers' `candle` messages). */
  onCandle?: (c: Candle, evaluated: boolean) => void;
  /** What all traders together may use (default: trader-schema.ts's per-machine bounds). */
  limits?: Partial<MachineBudget>;
}

export interface InvalidTrader {
  id: string;
  name: string;
  error: string;
}

const recentFiringsLimit = 10_000;

/**
 * Traders over shared per-stream indicators, evaluated once per closed candle. Traders are indexed
 * by stream, and each trader's filter is compiled per stream into closures over that stream's
 * indicator slots, so a closed candle costs one map lookup, one update per indicator instance and
 * one call per trader that watches the stream: no lookups, strings or allocations per condition.
 */
export class TraderEngine {
  private traders: LoadedTrader[] = [];
  private readonly streamsByKey = new Map<string, Stream>();
  /** A second guard against double firing, bounded (insertion order = age). */
  private readonly recentFirings = new Set<string>();
  readonly stats = { evaluations: 0, candles: 0, ignoredCandles: 0, lastEvaluationAt: 0, firings: 0 };
  private readonly capacity: number;
  private readonly budget: MachineBudget;

  constructor(private readonly opts: EngineOptions) {
    this.capacity = opts.candleCapacity ?? 500;
    this.budget = { ...defaultBudget, ...opts.limits };
  }

  /**
   * Validates and installs traders; returns the ones refused and why (a definition that does not
   * parse or exceeds its bounds, a symbol Binance does not know, or more than the machine's budget).
   * A refused trader never blocks the others. Unchanged traders keep their state.
   */
  setTraders(
    rows: Trader[],
    opts: { unknownSymbols?: ReadonlyMap<string, string> } = {},
  ): { loaded: number; invalid: InvalidTrader[] } {
    const invalid: InvalidTrader[] = [];
    const previous = new Map(this.traders.map((t) => [t.id, t]));
    const candidates: { trader: LoadedTrader; def: TraderDefinition; operands: Operand[]; running: boolean }[] = [];
    for (const row of rows) {
      if (!row.enabled) continue;
      const updatedAt = row.updatedAt.getTime();
      const old = previous.get(row.id);
      let trader: LoadedTrader;
      // Unchanged since it was validated (the store bumps updated_at on every edit): not parsed again.
      if (old && old.updatedAt === updatedAt) trader = old;
      else {
        const parsed = parseTraderDefinition(row.definition);
        if (!parsed.success) {
          invalid.push({ id: row.id, name: row.name, error: parsed.error });
          continue;
        }
        const operands = operandsOf(parsed.data.filter);
        const operandKeys = operands.map(operandKey);
        trader = { id: row.id, name: row.name, updatedAt, def: parsed.data, operands, operandKeys };
      }
      const unknown = trader.def.symbols.find((s) => opts.unknownSymbols?.has(s));
      if (unknown) {
        invalid.push({
          id: row.id,
          name: row.name,
          error: `symbols: ${unknown}: ${opts.unknownSymbols!.get(unknown)!}`,
        });
        continue;
      }
      candidates.push({ trader, def: trader.def, operands: trader.operands, running: trader === old });
    }
    // The same traders as now, unchanged and in the same order (the usual periodic reload): they fit
    // the budget before, so they all fit again, and rebuilding would compile the same closures over
    // the same slots, keeping every result. Nothing to do (at 1/16 of a core the rebuild was 0.5 s).
    if (candidates.length === this.traders.length && candidates.every((c, i) => c.trader === this.traders[i]))
      return { loaded: this.traders.length, invalid };
    const refused = fitToBudget(candidates, this.budget);
    const next: LoadedTrader[] = [];
    for (const c of candidates) {
      const error = refused.get(c);
      if (error) invalid.push({ id: c.trader.id, name: c.trader.name, error });
      else next.push(c.trader);
    }
    this.traders = next;

    const watchers = new Map<string, LoadedTrader[]>();
    for (const t of next) {
      for (const symbol of new Set(t.def.symbols)) {
        const key = streamKey(symbol, t.def.interval);
        const list = watchers.get(key);
        if (list) list.push(t);
        else watchers.set(key, [t]);
      }
    }
    for (const key of this.streamsByKey.keys()) if (!watchers.has(key)) this.streamsByKey.delete(key);
    for (const [key, traders] of watchers) {
      let stream = this.streamsByKey.get(key);
      if (!stream) {
        const { symbol, interval } = parseStreamKey(key);
        stream = { state: new StreamState(this.capacity, symbol, interval), bindings: [] };
        this.streamsByKey.set(key, stream);
      }
      const { state } = stream;
      const operands = traders.flatMap((t) => t.operands);
      state.retain(operands);
      state.require(operands);
      // Same trader object = unchanged trader: it keeps its previous result on this stream.
      const lastOf = new Map(stream.bindings.map((b) => [b.trader, b.last]));
      stream.bindings = traders.map((trader) => {
        const test = compileGroup(trader.def.filter, state);
        // A new or edited trader starts from what the data says now, so it fires on the next change only.
        const last = lastOf.get(trader) ?? (state.candles.size > 0 && test());
        const onChange = trader.def.fireOn === 'change';
        return { trader, test, last, onChange, slots: trader.operands.map((o) => state.slot(o)) };
      });
    }
    return { loaded: next.length, invalid };
  }

  /** The `SYMBOL|interval` keys the enabled traders need. */
  streams(): string[] {
    return [...this.streamsByKey.keys()];
  }

  traderCount(): number {
    return this.traders.length;
  }

  /** The enabled, valid traders loaded (the checkpoint records them). */
  loadedTraders(): readonly LoadedTrader[] {
    return this.traders;
  }

  streamState(key: string): StreamState | undefined {
    return this.streamsByKey.get(key)?.state;
  }

  /**
   * Feeds closed candles in order. `evaluate: false` (warm-up history) updates indicators and the
   * change state without firing: that alone rebuilds each trader's previous result after a restart.
   * `replay` marks missed closes evaluated after a restart (checkpoint.ts): only the traders it
   * accepts fire, flagged `replayed`. Candles not newer than the last one are ignored. `key`, when
   * the caller has it (the feed does), is every candle's `streamKey`: one string per stream, hashed
   * once, instead of a key built per candle.
   */
  onClosed(candles: readonly Candle[], evaluate: boolean, replay?: (t: LoadedTrader) => boolean, key?: string): void {
    for (let n = 0; n < candles.length; n++) {
      const c = candles[n]!;
      const stream = this.streamsByKey.get(key ?? streamKey(c.symbol, c.interval));
      const last = stream?.state.lastOpenTime;
      if (!stream || (last !== undefined && c.openTime <= last)) {
        this.stats.ignoredCandles++;
        continue;
      }
      const { state, bindings } = stream;
      state.add(c);
      this.stats.candles++;
      this.stats.evaluations += bindings.length;
      for (let i = 0; i < bindings.length; i++) {
        const b = bindings[i]!;
        const result = b.test();
        const was = b.last;
        b.last = result;
        if (!evaluate || !result || (was && b.onChange)) continue;
        if (replay && !replay(b.trader)) continue;
        this.fire(b, c, replay !== undefined);
      }
      this.stats.lastEvaluationAt = Date.now();
      this.opts.onCandle?.(c, evaluate);
    }
  }

  private fire(b: Binding, c: Candle, replayed: boolean): void {
    const t = b.trader;
    const id = `${t.id}|${c.symbol}|${c.interval}|${c.openTime}`;
    if (this.recentFirings.has(id)) return;
    this.recentFirings.add(id);
    if (this.recentFirings.size > recentFiringsLimit) {
      this.recentFirings.delete(this.recentFirings.values().next().value!);
    }
    // What `state.value(o)` reads: each operand's current value, null while it has none.
    const values: Record<string, number | null> = {};
    for (let i = 0; i < b.slots.length; i++) {
      const v = b.slots[i]!.cur;
      values[t.operandKeys[i]!] = Number.isNaN(v) ? null : v;
    }
    this.stats.firings++;
    this.opts.onFire({ trader: { id: t.id, name: t.name }, candle: c, values, replayed });
  }

  recentFiringsSize(): number {
    return this.recentFirings.size;
  }
}

/** A filter as one closure over `s`'s slots (missing values are NaN, so every comparison is false). */
function compileGroup(g: FilterGroup, s: StreamState): () => boolean {
  const all = 'all' in g;
  const tests = (all ? g.all : g.any).map((n) => (isGroup(n) ? compileGroup(n, s) : compileCondition(n, s)));
  if (tests.length === 1) return tests[0]!;
  return all
    ? () => {
        for (let i = 0; i < tests.length; i++) if (!tests[i]!()) return false;
        return true;
      }
    : () => {
        for (let i = 0; i < tests.length; i++) if (tests[i]!()) return true;
        return false;
      };
}

function compileCondition(c: Condition, s: StreamState): () => boolean {
  const l = s.slot(c.left);
  const r = typeof c.right === 'number' ? { cur: c.right, prev: c.right } : s.slot(c.right);
  switch (c.op) {
    case '>':
      return () => l.cur > r.cur;
    case '>=':
      return () => l.cur >= r.cur;
    case '<':
      return () => l.cur < r.cur;
    case '<=':
      return () => l.cur <= r.cur;
    // Previous candle left ≤ right, this one left > right (mirror for below).
    case 'crossesAbove':
      return () => l.prev <= r.prev && l.cur > r.cur;
    case 'crossesBelow':
      return () => l.prev >= r.prev && l.cur < r.cur;
  }
}
