import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { klineIntervals, type KlineInterval } from '../../machine-runtime/candles';
import { aggregate, FIXED_MS } from './aggregate';
import { parseCandleCsv } from './csv';

/**
 * Recorded candles: the data folder (`DataIndex`, `loadCandles`). CSV parsing is in csv.ts, aggregation to
 * coarser intervals in aggregate.ts, in-progress candles in partial.ts.
 */

/** One kline, numbers only. Fields the recorded CSVs lack are derived (`deriveMissing`, csv.ts). */
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
