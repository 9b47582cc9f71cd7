import { performance } from 'node:perf_hooks';
import { intervalMs, parseStreamKey, type Candle } from '../machine-runtime/candles';
import { klineFrame, wsTextFrames, type RecordedMarket, type startFeeder } from './runtime-market';

/**
 * The budget run's market clock: Binance's live rate, with boundaries on demand. Every stream gets an
 * in-progress update every `updateMs` (Binance: 2 s), spread evenly over that period in ticks of
 * `tickMs` (each tick carries the updates of 1/(updateMs/tickMs) of the streams). Market time runs
 * one market minute per `minuteMs` of real time: at the end of each, the candles that close then
 * (1m streams every minute, 5m every 5th, 15m every 15th, when all three close together) are written
 * at once, as one burst. So the updates come at the real rate and the boundaries `minuteMs` apart
 * instead of 60 s; a 15-minute boundary (every stream closes) comes every 15 × `minuteMs`.
 */
export interface ClockOptions {
  minutes: number;
  minuteMs: number;
  updateMs: number;
  tickMs: number;
  /** Updates go on this long after the last boundary (to watch the runtime recover from it). */
  tailMs: number;
}

export interface Boundary {
  /** Market minute whose end this is (0-based: minute 14 ends at the first 15-minute boundary). */
  minute: number;
  /** The longest interval closing: `15m` when every stream closes. */
  kind: string;
  /** When its frames were handed to the socket (epoch ms), and their `SYMBOL|interval|openTime`. */
  at: number;
  keys: string[];
  /** The cgroup's cpu.stat when it was written. */
  cpuStat: { periods: number; throttled: number; throttledNs: number };
}

const now = () => performance.timeOrigin + performance.now();
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - now())));

/** Plays the market at the live rate into the feeder; resolves with what it sent and when. */
export async function playLiveMarket(
  market: RecordedMarket,
  feeder: Awaited<ReturnType<typeof startFeeder>>,
  streamKeys: string[],
  o: ClockOptions,
  cpuStat: () => Boundary['cpuStat'],
) {
  const streams = streamKeys.map((key) => {
    const { symbol, interval } = parseStreamKey(key);
    return { i: market.symbols.indexOf(symbol), interval, per: intervalMs(interval) / 60_000 };
  });
  const followed = new Set(streamKeys);
  const closesAt = (m: number) => market.closesAt(m).filter((c) => followed.has(`${c.symbol}|${c.interval}`));
  const slots = Math.max(1, Math.round(o.updateMs / o.tickMs));
  /** Cumulative frames written, with the time of each write: the runtime's backlog is measured against it. */
  const writes: [number, number][] = [];
  const boundaries: Boundary[] = [];
  let frames = 0;
  let maxQueued = 0;
  const write = (texts: string[], at = now()) => {
    if (texts.length === 0 || feeder.connections() === 0) return; // the runtime died (OOM): nothing to feed
    void feeder.write(wsTextFrames(texts));
    frames += texts.length;
    writes.push([at, frames]);
    maxQueued = Math.max(maxQueued, feeder.queued());
  };
  const t0 = now();
  const end = t0 + o.minutes * o.minuteMs + o.tailMs;
  let tick = 0;
  let minute = 0;
  // Encoded ahead, so a boundary's clock starts when its bytes are written, not while they are made.
  let next = closesAt(0);
  let nextBytes = next.map((c) => klineFrame(c, 1));
  for (;;) {
    const tickAt = t0 + tick * o.tickMs;
    const boundaryAt = minute < o.minutes ? t0 + (minute + 1) * o.minuteMs : Infinity;
    if (Math.min(tickAt, boundaryAt) >= end) break;
    if (boundaryAt <= tickAt) {
      await sleepUntil(boundaryAt);
      const at = now();
      const stat = cpuStat();
      write(nextBytes, at);
      const keys = next.map((c: Candle) => `${c.symbol}|${c.interval}|${c.openTime}`);
      const kind = next.reduce((a, c) => (intervalMs(c.interval) > intervalMs(a) ? c.interval : a), '1m');
      boundaries.push({ minute, kind, at, keys, cpuStat: stat });
      minute++;
      next = minute < o.minutes ? closesAt(minute) : [];
      nextBytes = next.map((c) => klineFrame(c, 1));
      continue;
    }
    await sleepUntil(tickAt);
    // This tick's share of the streams: the candle each is forming now, that far into its time;
    // never one past a boundary not written yet (a late tick would make the runtime backfill).
    const elapsed = Math.min((now() - t0) / o.minuteMs, minute + 0.999);
    const m = Math.floor(elapsed);
    const texts: string[] = [];
    for (let s = tick % slots; s < streams.length; s += slots) {
      const { i, interval, per } = streams[s]!;
      const j = Math.floor(m / per);
      const fraction = Math.min(0.999, Math.max(0.001, (elapsed - j * per) / per));
      texts.push(klineFrame(market.candle(i, interval, j), fraction));
    }
    write(texts);
    tick++;
  }
  return { t0, end: now(), writes, boundaries, frames, maxQueued };
}
