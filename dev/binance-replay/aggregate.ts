import type { Candle, Interval } from './candles';

/** Interval arithmetic (lengths, bucket starts) and the aggregation of finer candles into coarser ones. */

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
/** Fixed-length intervals; `1M` has no fixed length and is handled by `nextOpenTime`. */
export const FIXED_MS: Partial<Record<Interval, number>> = {
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

/** Rounded to Binance's 8 decimals. */
export const round8 = (n: number) => Math.round(n * 1e8) / 1e8;

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
