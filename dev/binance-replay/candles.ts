import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { klineIntervals, type KlineInterval } from '../../machine-runtime/candles';

/** One kline, numbers only. Fields the recorded CSVs lack are derived (see `deriveMissing`). */
export interface Candle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  closeTime: number;
  quoteVolume: number;
  trades: number;
  takerBuyBase: number;
  takerBuyQuote: number;
}

/** Binance's kline intervals (case-sensitive: `1m` is a minute, `1M` a month): the runtime's own list. */
export const INTERVALS = klineIntervals;
export type Interval = KlineInterval;

export function isInterval(s: string): s is Interval {
  return (INTERVALS as readonly string[]).includes(s);
}

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
/** Fixed-length intervals; `1M` has no fixed length and is handled by `nextOpenTime`. */
const FIXED_MS: Partial<Record<Interval, number>> = {
  '1s': 1000,
  '1m': MINUTE,
  '3m': 3 * MINUTE,
  '5m': 5 * MINUTE,
  '15m': 15 * MINUTE,
  '30m': 30 * MINUTE,
  '1h': 60 * MINUTE,
  '2h': 120 * MINUTE,
  '4h': 240 * MINUTE,
  '6h': 360 * MINUTE,
  '8h': 480 * MINUTE,
  '12h': 720 * MINUTE,
  '1d': DAY,
  '3d': 3 * DAY,
  '1w': 7 * DAY,
};

/** Open time of the candle after the one opening at `openTime`. */
export function nextOpenTime(openTime: number, interval: Interval): number {
  const fixed = FIXED_MS[interval];
  if (fixed !== undefined) return openTime + fixed;
  const d = new Date(openTime);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * Start of the bucket holding `t`, for the intervals we aggregate to. Weeks start on Monday 00:00 UTC
 * (the epoch was a Thursday, hence the 4-day shift); 3d and 1M are not aggregated (alignment unclear).
 */
function bucketStart(t: number, interval: Interval): number | undefined {
  const ms = FIXED_MS[interval];
  if (ms === undefined || interval === '3d') return undefined;
  if (interval === '1w') return Math.floor((t - 4 * DAY) / ms) * ms + 4 * DAY;
  return Math.floor(t / ms) * ms;
}

/** Timestamps in the wild come as ISO-ish strings, seconds, milliseconds or (data.binance.vision 2025+) µs. */
function parseTime(raw: string): number {
  const s = raw.trim();
  // Fast path for the recorded files' `YYYY-MM-DD HH:MM:SS` (UTC): Date.parse dominates load time otherwise.
  if (s.length === 19 && s[4] === '-' && s[10] === ' ') {
    const n = (a: number, b: number) => Number(s.slice(a, b));
    return Date.UTC(n(0, 4), n(5, 7) - 1, n(8, 10), n(11, 13), n(14, 16), n(17, 19));
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (n >= 1e14) return Math.floor(n / 1000);
    if (n < 1e11) return Math.round(n * 1000);
    return n;
  }
  const iso = s.replace(' ', 'T');
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  if (Number.isNaN(t)) throw new Error(`unparseable time "${raw}"`);
  return t;
}

/** Column names we understand, by role; the data.binance.vision order is the fallback for headerless files. */
const COLUMN_ALIASES: Record<string, string[]> = {
  openTime: ['timestamp', 'open_time', 'opentime', 'time', 'date', 'datetime'],
  open: ['open', 'o'],
  high: ['high', 'h'],
  low: ['low', 'l'],
  close: ['close', 'c'],
  volume: ['volume', 'v', 'base_volume'],
  closeTime: ['close_time', 'closetime'],
  quoteVolume: ['quote_volume', 'quote_asset_volume', 'quotevolume'],
  trades: ['count', 'trades', 'number_of_trades', 'num_trades'],
  takerBuyBase: ['taker_buy_volume', 'taker_buy_base_volume', 'taker_buy_base_asset_volume', 'taker_buy_base'],
  takerBuyQuote: ['taker_buy_quote_volume', 'taker_buy_quote_asset_volume', 'taker_buy_quote'],
};
const HEADERLESS_ORDER = [
  'openTime',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'closeTime',
  'quoteVolume',
  'trades',
  'takerBuyBase',
  'takerBuyQuote',
];

/** Parses one recorded CSV (any of the layouts above). Rows keep file order. */
export function parseCandleCsv(text: string, interval: Interval): Candle[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const first = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const hasHeader = first.some((h) => /[a-z]/.test(h));
  const index: Record<string, number> = {};
  if (hasHeader) {
    for (const [role, aliases] of Object.entries(COLUMN_ALIASES)) {
      const i = first.findIndex((h) => aliases.includes(h));
      if (i >= 0) index[role] = i;
    }
    for (const role of ['openTime', 'open', 'high', 'low', 'close', 'volume']) {
      if (index[role] === undefined) throw new Error(`CSV has no "${role}" column (header: ${first.join(',')})`);
    }
  } else {
    const width = first.length;
    HEADERLESS_ORDER.forEach((role, i) => {
      if (i < width) index[role] = i;
    });
  }
  const out: Candle[] = [];
  for (let li = hasHeader ? 1 : 0; li < lines.length; li++) {
    const cells = (lines[li] ?? '').split(',');
    const num = (role: string): number | undefined => {
      const i = index[role];
      if (i === undefined) return undefined;
      const n = Number(cells[i]);
      return Number.isFinite(n) ? n : undefined;
    };
    const timeCell = cells[index.openTime ?? 0];
    if (timeCell === undefined) continue;
    const openTime = parseTime(timeCell);
    const closeCell = index.closeTime === undefined ? undefined : cells[index.closeTime];
    const candle = deriveMissing(
      {
        openTime,
        open: num('open') ?? NaN,
        high: num('high') ?? NaN,
        low: num('low') ?? NaN,
        close: num('close') ?? NaN,
        volume: num('volume') ?? NaN,
        closeTime: closeCell === undefined ? undefined : parseTime(closeCell),
        quoteVolume: num('quoteVolume'),
        trades: num('trades'),
        takerBuyBase: num('takerBuyBase'),
        takerBuyQuote: num('takerBuyQuote'),
      },
      interval,
    );
    if ([candle.open, candle.high, candle.low, candle.close, candle.volume].some((n) => Number.isNaN(n))) {
      throw new Error(`CSV line ${li + 1} has a non-numeric price or volume`);
    }
    out.push(candle);
  }
  return out;
}

const round8 = (n: number) => Math.round(n * 1e8) / 1e8;

type PartialCandle = Omit<Candle, 'closeTime' | 'quoteVolume' | 'trades' | 'takerBuyBase' | 'takerBuyQuote'> &
  Partial<Pick<Candle, 'closeTime' | 'quoteVolume' | 'trades' | 'takerBuyBase' | 'takerBuyQuote'>>;

/**
 * The recorded CSVs carry OHLCV only. Binance also reports quote volume, trade count and taker-buy
 * volumes, so they are estimated deterministically: quote volume at the bar's mean price, one trade per
 * ~1000 quote units, and a taker-buy share leaning with the bar's direction.
 */
export function deriveMissing(c: PartialCandle, interval: Interval): Candle {
  const closeTime = c.closeTime ?? nextOpenTime(c.openTime, interval) - 1;
  const quoteVolume = c.quoteVolume ?? round8((c.volume * (c.open + c.high + c.low + c.close)) / 4);
  const trades = c.trades ?? (c.volume > 0 ? Math.max(1, Math.round(quoteVolume / 1000)) : 0);
  const range = c.high - c.low;
  const buyShare = 0.5 + (range > 0 ? (0.25 * (c.close - c.open)) / range : 0);
  return {
    openTime: c.openTime,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    closeTime,
    quoteVolume,
    trades,
    takerBuyBase: c.takerBuyBase ?? round8(c.volume * buyShare),
    takerBuyQuote: c.takerBuyQuote ?? round8(quoteVolume * buyShare),
  };
}

/** Sums whole buckets of `source` candles into `target` candles; incomplete buckets are left out. */
export function aggregate(source: Candle[], sourceInterval: Interval, target: Interval): Candle[] {
  const srcMs = FIXED_MS[sourceInterval];
  const dstMs = FIXED_MS[target];
  if (srcMs === undefined || dstMs === undefined || dstMs % srcMs !== 0 || dstMs === srcMs) return [];
  const need = dstMs / srcMs;
  const out: Candle[] = [];
  let bucket: Candle[] = [];
  let key: number | undefined;
  const flush = () => {
    const [head] = bucket;
    const tail = bucket[bucket.length - 1];
    if (head && tail && key !== undefined && bucket.length === need) {
      const sum = (f: (c: Candle) => number) => round8(bucket.reduce((a, c) => a + f(c), 0));
      out.push({
        openTime: key,
        open: head.open,
        high: Math.max(...bucket.map((c) => c.high)),
        low: Math.min(...bucket.map((c) => c.low)),
        close: tail.close,
        volume: sum((c) => c.volume),
        closeTime: key + dstMs - 1,
        quoteVolume: sum((c) => c.quoteVolume),
        trades: bucket.reduce((a, c) => a + c.trades, 0),
        takerBuyBase: sum((c) => c.takerBuyBase),
        takerBuyQuote: sum((c) => c.takerBuyQuote),
      });
    }
    bucket = [];
  };
  for (const c of source) {
    const k = bucketStart(c.openTime, target);
    if (k === undefined) return [];
    if (k !== key) {
      flush();
      key = k;
    }
    // A gap inside a bucket shows up as a short bucket, which flush() drops.
    bucket.push(c);
  }
  flush();
  return out;
}

const FILE_RE = /^([A-Z0-9]+)-(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(?:[-_.].*)?\.csv$/;

/** The recorded files in a folder, by symbol and interval, without reading them. */
export class DataIndex {
  readonly files = new Map<string, Map<Interval, string[]>>();
  private readonly cache = new Map<string, Candle[]>();
  private readonly recordedCache = new Map<string, Candle[]>();

  constructor(
    readonly dataDir: string,
    symbols?: string[],
  ) {
    if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
      throw new DataDirMissingError(dataDir);
    }
    const wanted = symbols?.map((s) => s.toUpperCase());
    for (const name of readdirSync(dataDir).sort()) {
      const m = FILE_RE.exec(name);
      if (!m) continue;
      const symbol = m[1] as string;
      const interval = m[2] as Interval;
      if (wanted && !wanted.includes(symbol)) continue;
      const byInterval = this.files.get(symbol) ?? new Map<Interval, string[]>();
      byInterval.set(interval, [...(byInterval.get(interval) ?? []), path.join(dataDir, name)]);
      this.files.set(symbol, byInterval);
    }
  }

  symbols(): string[] {
    return [...this.files.keys()];
  }

  hasSymbol(symbol: string): boolean {
    return this.files.has(symbol.toUpperCase());
  }

  /** Earliest open time over the indexed files, reading only each file's first rows. */
  firstOpenTime(): number | undefined {
    let min: number | undefined;
    for (const byInterval of this.files.values()) {
      for (const [interval, paths] of byInterval) {
        for (const p of paths) {
          const head = readHead(p);
          const [c] = parseCandleCsv(head, interval);
          if (c && (min === undefined || c.openTime < min)) min = c.openTime;
        }
      }
    }
    return min;
  }

  /** Recorded candles merged with candles aggregated from finer recorded intervals (recorded wins). Cached. */
  series(symbol: string, interval: Interval): Candle[] {
    const sym = symbol.toUpperCase();
    const key = `${sym}|${interval}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const byInterval = this.files.get(sym);
    const byOpen = new Map<number, Candle>();
    const own = this.recorded(sym, interval);
    for (const c of own) byOpen.set(c.openTime, c);
    const covered: [number, number][] =
      own.length > 0 ? [[(own[0] as Candle).openTime, (own[own.length - 1] as Candle).openTime]] : [];
    const target = FIXED_MS[interval];
    if (byInterval && target !== undefined) {
      // Coarsest source first: cheaper, and identical where sources overlap.
      const sources = [...byInterval.keys()]
        .filter((i) => {
          const ms = FIXED_MS[i];
          return ms !== undefined && ms < target && target % ms === 0;
        })
        .sort((a, b) => (FIXED_MS[b] ?? 0) - (FIXED_MS[a] ?? 0));
      for (const src of sources) {
        // Parsing a finer file only pays when it reaches outside what is already recorded.
        const span = this.span(sym, src);
        if (!span || covered.some(([a, b]) => span[0] >= a && span[1] <= b + target)) continue;
        covered.push(span);
        for (const c of aggregate(this.recorded(sym, src), src, interval)) {
          if (!byOpen.has(c.openTime)) byOpen.set(c.openTime, c);
        }
      }
    }
    const out = [...byOpen.values()].sort((a, b) => a.openTime - b.openTime);
    this.cache.set(key, out);
    return out;
  }

  private recorded(symbol: string, interval: Interval): Candle[] {
    const key = `${symbol}|${interval}`;
    const hit = this.recordedCache.get(key);
    if (hit) return hit;
    const paths = this.files.get(symbol)?.get(interval) ?? [];
    const all = paths.flatMap((p) => parseCandleCsv(readFileSync(p, 'utf8'), interval));
    const byOpen = new Map(all.map((c) => [c.openTime, c]));
    const out = [...byOpen.values()].sort((a, b) => a.openTime - b.openTime);
    this.recordedCache.set(key, out);
    return out;
  }

  /** First and last open time over a symbol's files of one interval, from their first and last lines only. */
  private span(symbol: string, interval: Interval): [number, number] | undefined {
    let span: [number, number] | undefined;
    for (const p of this.files.get(symbol)?.get(interval) ?? []) {
      const head = readHead(p);
      const header = head.split('\n')[0] ?? '';
      const [first] = parseCandleCsv(head, interval);
      const tail = readTail(p);
      if (tail === header) continue;
      const [last] = parseCandleCsv(/[a-z]/i.test(header) ? `${header}\n${tail}` : tail, interval);
      if (!first || !last) continue;
      span = span
        ? [Math.min(span[0], first.openTime), Math.max(span[1], last.openTime)]
        : [first.openTime, last.openTime];
    }
    return span;
  }
}

function readHead(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8');
    // Keep whole lines only: the header and the first row.
    return text.split(/\r?\n/).slice(0, 2).join('\n');
  } finally {
    closeSync(fd);
  }
}

function readTail(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const len = Math.min(size, 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf
      .toString('utf8')
      .split(/\r?\n/)
      .filter((l) => l.trim() !== '');
    return lines[lines.length - 1] ?? '';
  } finally {
    closeSync(fd);
  }
}

export class DataDirMissingError extends Error {
  constructor(readonly dataDir: string) {
    super(
      `Recorded Binance data not found at ${dataDir}. The recorded data is absent on this machine: ` +
        'use live Binance instead (set BINANCE_WS_URL and BINANCE_REST_URL, e.g. the defaults ' +
        'wss://stream.binance.com:9443 and https://api.binance.com), or point BINANCE_DATA_DIR at the data.',
    );
    this.name = 'DataDirMissingError';
  }
}

/** The repository root (two levels above this folder): relative data paths resolve against it. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export function resolveDataDir(dir: string): string {
  return path.resolve(REPO_ROOT, dir);
}

/** Candles for one symbol and interval: recorded, or aggregated from a finer recorded interval. [] when none. */
export function loadCandles(dataDir: string, symbol: string, interval: string): Candle[] {
  if (!isInterval(interval)) throw new Error(`unknown interval "${interval}"`);
  return new DataIndex(resolveDataDir(dataDir), [symbol]).series(symbol, interval);
}

/** Decimal places a recorded price shows, so interpolated prices look like the symbol's tick. */
function decimals(n: number): number {
  const s = String(n);
  const dot = s.indexOf('.');
  return dot < 0 || s.includes('e') ? 0 : s.length - dot - 1;
}

/**
 * The candle as it stood a fraction `p` (0 ≤ p < 1) into its life. The price walks
 * open → low → high → close for a rising bar (open → high → low → close for a falling one), so partial
 * highs and lows never exceed the final ones and the close event completes the path. Volumes and
 * trades grow linearly.
 */
export function partialAt(c: Candle, p: number): Candle {
  const rising = c.close >= c.open;
  const path = rising ? [c.open, c.low, c.high, c.close] : [c.open, c.high, c.low, c.close];
  const legs = [0, 1, 2].map((i) => Math.abs((path[i + 1] as number) - (path[i] as number)));
  const total = legs.reduce((a, b) => a + b, 0);
  let remaining = p * total;
  let price = c.open;
  let high = c.open;
  let low = c.open;
  for (let i = 0; i < 3 && total > 0; i++) {
    const from = path[i] as number;
    const to = path[i + 1] as number;
    const leg = legs[i] as number;
    const step = Math.min(remaining, leg);
    price = leg === 0 ? to : from + ((to - from) * step) / leg;
    high = Math.max(high, price);
    low = Math.min(low, price);
    remaining -= step;
    if (remaining <= 0) break;
  }
  const dp = Math.max(decimals(c.open), decimals(c.high), decimals(c.low), decimals(c.close));
  const tick = (x: number) => Number(x.toFixed(dp));
  return {
    ...c,
    high: tick(high),
    low: tick(low),
    close: tick(price),
    volume: round8(c.volume * p),
    quoteVolume: round8(c.quoteVolume * p),
    trades: Math.floor(c.trades * p),
    takerBuyBase: round8(c.takerBuyBase * p),
    takerBuyQuote: round8(c.takerBuyQuote * p),
  };
}
