import { FIXED_MS, round8 } from './aggregate';
import type { Candle, DataIndex, Interval } from './candles';

/**
 * Loop mode: the recording replayed again and again, shifted forward by whole laps, computed on the fly from the
 * loaded arrays (no lap is materialised). A `Timeline` is one series seen through the laps: virtual index 0, 1, …
 * runs through lap 0 (the recording as it is) and then lap 1, 2, … without end. WS (clock.ts) and REST (rest.ts)
 * read the same timelines, so they agree on every candle of every lap.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Trade ids of a series start here and grow by each candle's trade count, across laps too. */
export const TRADE_ID_BASE = 1_000_000;
/** The per-lap price factor is held inside [1/MAX_FACTOR, MAX_FACTOR]: beyond that the seams jump instead. */
const MAX_FACTOR = 1000;

/**
 * Lap units, longest first. A lap is a whole number of units, and every looped interval divides the unit, so
 * candle boundaries (Monday-aligned weeks included) stay aligned in every lap. Weeks start on Monday 00:00 UTC
 * (the epoch was a Thursday, hence the 4-day offset).
 */
const UNITS = [
  { ms: 7 * DAY, offset: 4 * DAY },
  { ms: DAY, offset: 0 },
  { ms: HOUR, offset: 0 },
];

export const floorTo = (t: number, unit: number, offset = 0): number => Math.floor((t - offset) / unit) * unit + offset;
export const ceilTo = (t: number, unit: number, offset = 0): number => Math.ceil((t - offset) / unit) * unit + offset;

/** Where a symbol's laps come from: the whole units of its finest recorded series, [from, to). */
export interface LapPlan {
  from: number;
  to: number;
  /** `to - from`: how far each lap is shifted from the one before. */
  period: number;
  unit: number;
  /**
   * Prices of lap k are the recorded ones × ratio^k (rounded to Binance's 8 decimals): the last close before `to`
   * over the first open at `from`, so each lap opens where the one before closed.
   */
  ratio: number;
}

/** First index whose open time is ≥ t, in a sorted array. */
export function lowerIndex(candles: readonly Candle[], t: number, lo = 0, hi = candles.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((candles[mid] as Candle).openTime < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The lap plan of a symbol from its finest recorded series (`intervalMs` long candles): the longest unit of which
 * at least one whole one fits in the recording. Undefined when none fits (then nothing loops).
 */
export function planLaps(finest: readonly Candle[], intervalMs: number): LapPlan | undefined {
  const head = finest[0];
  const tail = finest[finest.length - 1];
  if (!head || !tail) return undefined;
  for (const u of UNITS) {
    if (u.ms % intervalMs !== 0) continue;
    const from = ceilTo(head.openTime, u.ms, u.offset);
    const to = floorTo(tail.closeTime + 1, u.ms, u.offset);
    if (to - from < u.ms) continue;
    const first = finest[lowerIndex(finest, from)];
    const last = finest[lowerIndex(finest, to) - 1];
    const ratio = first && last && first.open > 0 && last.close > 0 ? last.close / first.open : 1;
    return { from, to, period: to - from, unit: u.ms, ratio };
  }
  return undefined;
}

/** One series through the laps. Virtual indices are ≥ 0; without a loop they are the array's own. */
export interface Timeline {
  /** The candle at virtual index v: shifted and scaled for laps ≥ 1; undefined past the end (no loop) or v < 0. */
  at(v: number): Candle | undefined;
  /** The first virtual index whose open time is ≥ t. */
  lower(t: number): number;
  /** The id of candle v's first trade (ids keep growing from lap to lap). */
  firstTradeId(v: number): number;
  /** The lap of virtual index v (0 = the recording as it is). */
  lapOf(v: number): number;
}

const prefixCache = new WeakMap<readonly Candle[], Float64Array>();

/** Trade counts summed: prefix[i] is the trades of candles [0, i). */
function tradePrefix(candles: readonly Candle[]): Float64Array {
  let p = prefixCache.get(candles);
  if (!p) {
    p = new Float64Array(candles.length + 1);
    for (let i = 0; i < candles.length; i++) p[i + 1] = (p[i] as number) + (candles[i] as Candle).trades;
    prefixCache.set(candles, p);
  }
  return p;
}

/** Lap k's price factor: ratio^k, held inside the bounds. */
export function lapFactor(plan: LapPlan, k: number): number {
  if (plan.ratio === 1) return 1;
  return Math.min(MAX_FACTOR, Math.max(1 / MAX_FACTOR, Math.pow(plan.ratio, k)));
}

/**
 * A series through the laps of `plan`. Intervals that do not divide the lap unit (`3d`, `1M`), or with no candle
 * inside the plan, are not looped: the array as recorded, which ends.
 */
export function timeline(candles: readonly Candle[], interval: Interval, plan: LapPlan | undefined): Timeline {
  const prefix = tradePrefix(candles);
  const ms = FIXED_MS[interval];
  const n0 = plan ? lowerIndex(candles, plan.to) : 0; // lap 0: [0, n0)
  const a = plan ? lowerIndex(candles, plan.from, 0, n0) : 0; // a lap: [a, n0) shifted
  const m = n0 - a;
  if (!plan || ms === undefined || plan.unit % ms !== 0 || m === 0) {
    return {
      at: (v) => (v >= 0 ? candles[v] : undefined),
      lower: (t) => lowerIndex(candles, t),
      firstTradeId: (v) => TRADE_ID_BASE + (prefix[Math.max(0, Math.min(v, candles.length))] as number),
      lapOf: () => 0,
    };
  }
  const { period } = plan;
  const lapTrades = (prefix[n0] as number) - (prefix[a] as number);
  /** Virtual index → [lap, index into candles]. */
  const locate = (v: number): [number, number] => {
    if (v < n0) return [0, v];
    const j = v - n0;
    const k = Math.floor(j / m) + 1;
    return [k, a + (j - (k - 1) * m)];
  };
  return {
    at: (v) => {
      if (v < 0) return undefined;
      const [k, i] = locate(v);
      const c = candles[i] as Candle;
      if (k === 0) return c;
      const shift = k * period;
      const f = lapFactor(plan, k);
      const px = (x: number) => (f === 1 ? x : round8(x * f));
      return {
        ...c,
        openTime: c.openTime + shift,
        closeTime: c.closeTime + shift,
        open: px(c.open),
        high: px(c.high),
        low: px(c.low),
        close: px(c.close),
        quoteVolume: f === 1 ? c.quoteVolume : round8(c.quoteVolume * f),
        takerBuyQuote: f === 1 ? c.takerBuyQuote : round8(c.takerBuyQuote * f),
      };
    },
    lower: (t) => {
      if (t <= plan.to) return Math.min(lowerIndex(candles, t), n0);
      const k = Math.floor((t - plan.to) / period) + 1; // lap k covers [to + (k-1)·period, to + k·period)
      const i = lowerIndex(candles, t - k * period, a, n0);
      return n0 + (k - 1) * m + (i - a);
    },
    firstTradeId: (v) => {
      if (v < 0) return TRADE_ID_BASE;
      const [k, i] = locate(v);
      if (k === 0) return TRADE_ID_BASE + (prefix[i] as number);
      return (
        TRADE_ID_BASE + (prefix[n0] as number) + (k - 1) * lapTrades + (prefix[i] as number) - (prefix[a] as number)
      );
    },
    lapOf: (v) => locate(Math.max(0, v))[0],
  };
}

export type Timelines = ReturnType<typeof createTimelines>;

/** The timelines of a data folder, cached per series. With `loop` false every timeline is the recording as is. */
export function createTimelines(index: DataIndex, loop: boolean) {
  const plans = new Map<string, LapPlan | undefined>();
  const cache = new Map<string, Timeline>();

  /** A symbol's plan, from its finest recorded fixed-length interval (which the coarser ones aggregate from). */
  const planOf = (symbol: string): LapPlan | undefined => {
    if (plans.has(symbol)) return plans.get(symbol);
    let finest: Interval | undefined;
    for (const i of index.files.get(symbol)?.keys() ?? []) {
      const ms = FIXED_MS[i];
      if (ms !== undefined && (finest === undefined || ms < (FIXED_MS[finest] as number))) finest = i;
    }
    const plan = finest ? planLaps(index.series(symbol, finest), FIXED_MS[finest] as number) : undefined;
    plans.set(symbol, plan);
    return plan;
  };

  return {
    loop,
    /** The lap plan of a symbol (undefined when not looping, or when too little is recorded to loop). */
    plan: (symbol: string): LapPlan | undefined => (loop ? planOf(symbol.toUpperCase()) : undefined),
    series(symbol: string, interval: Interval): Timeline {
      const sym = symbol.toUpperCase();
      const key = `${sym}|${interval}`;
      let t = cache.get(key);
      if (!t) {
        t = timeline(index.series(sym, interval), interval, loop ? planOf(sym) : undefined);
        cache.set(key, t);
      }
      return t;
    },
  };
}
