/** A closed (or, on the wire, still-forming) kline. Times are epoch milliseconds. */
export interface Candle {
  symbol: string;
  interval: string;
  openTime: number;
  closeTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export const klineIntervals = [
  '1s',
  '1m',
  '3m',
  '5m',
  '15m',
  '30m',
  '1h',
  '2h',
  '4h',
  '6h',
  '8h',
  '12h',
  '1d',
  '3d',
  '1w',
  '1M',
] as const;
export type KlineInterval = (typeof klineIntervals)[number];

const unitMs: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Interval length in ms. `1M` is calendar-based; 31 days is only used as an upper bound for staleness. */
export function intervalMs(interval: string): number {
  if (interval === '1M') return 31 * unitMs.d!;
  const m = /^(\d+)([smhdw])$/.exec(interval);
  if (!m) throw new Error(`unknown kline interval ${interval}`);
  return Number(m[1]) * unitMs[m[2]!]!;
}

/** The stream key used for buffers, indicators and dedupe: `BTCUSDT|5m`. */
export const streamKey = (symbol: string, interval: string) => `${symbol.toUpperCase()}|${interval}`;

/** The Binance stream name: `btcusdt@kline_5m` (symbols are lowercase on the wire). */
export const streamName = (symbol: string, interval: string) => `${symbol.toLowerCase()}@kline_${interval}`;

export function parseStreamKey(key: string): { symbol: string; interval: string } {
  const [symbol, interval] = key.split('|');
  return { symbol: symbol!, interval: interval! };
}

/** Fixed-capacity FIFO: the oldest candle falls out, so memory per stream is constant. */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    const end = (this.start + this.count) % this.capacity;
    this.items[end] = item;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** `at(-1)` is the newest, `at(0)` the oldest. */
  at(index: number): T | undefined {
    const i = index < 0 ? this.count + index : index;
    if (i < 0 || i >= this.count) return undefined;
    return this.items[(this.start + i) % this.capacity];
  }

  last(): T | undefined {
    return this.at(-1);
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T);
    return out;
  }
}

/**
 * The closed candles of ONE stream, newest last, in fixed-capacity columns (Float64Array per field)
 * instead of an array of candle objects: 900 streams × 500 candles stay ~25 MB of flat memory that
 * the garbage collector never has to walk, instead of 450,000 long-lived objects. Symbol and
 * interval are the stream's own and are not stored per candle.
 */
export class CandleSeries {
  readonly openTime: Float64Array;
  readonly closeTime: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  private start = 0;
  private count = 0;
  constructor(
    readonly symbol: string,
    readonly interval: string,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('capacity must be a positive integer');
    this.openTime = new Float64Array(capacity);
    this.closeTime = new Float64Array(capacity);
    this.open = new Float64Array(capacity);
    this.high = new Float64Array(capacity);
    this.low = new Float64Array(capacity);
    this.close = new Float64Array(capacity);
    this.volume = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(c: Candle): void {
    let i = this.start + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.openTime[i] = c.openTime;
    this.closeTime[i] = c.closeTime;
    this.open[i] = c.open;
    this.high[i] = c.high;
    this.low[i] = c.low;
    this.close[i] = c.close;
    this.volume[i] = c.volume;
    if (this.count < this.capacity) this.count++;
    else if (++this.start === this.capacity) this.start = 0;
  }

  /** Column index of the candle `back` steps before the newest (0 = newest), or -1 when not held. */
  index(back: number): number {
    if (back < 0 || back >= this.count) return -1;
    let i = this.start + this.count - 1 - back;
    if (i >= this.capacity) i -= this.capacity;
    return i;
  }

  /** `at(-1)` is the newest, `at(0)` the oldest, as a candle object (allocates: not for hot paths). */
  at(index: number): Candle | undefined {
    const back = index < 0 ? -1 - index : this.count - 1 - index;
    const i = this.index(back);
    if (i < 0) return undefined;
    return {
      symbol: this.symbol,
      interval: this.interval,
      openTime: this.openTime[i]!,
      closeTime: this.closeTime[i]!,
      open: this.open[i]!,
      high: this.high[i]!,
      low: this.low[i]!,
      close: this.close[i]!,
      volume: this.volume[i]!,
    };
  }

  last(): Candle | undefined {
    return this.at(-1);
  }

  /** Open time of the newest candle, without allocating. */
  lastOpenTime(): number | undefined {
    return this.count === 0 ? undefined : this.openTime[this.index(0)];
  }

  toArray(): Candle[] {
    const out: Candle[] = [];
    for (let k = 0; k < this.count; k++) out.push(this.at(k)!);
    return out;
  }
}

/** Binance archives from 2025 on store microseconds; everything inside the runtime is milliseconds. */
export const toMs = (t: number) => (t > 1e14 ? Math.floor(t / 1000) : t);
