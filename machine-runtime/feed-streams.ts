import { intervalMs, parseStreamKey, streamKey, streamName, type Candle } from './candles';
import { toCandle } from './feed-frames';
import type { Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';
import { InvalidSymbolError, type KlinesClient } from './rest';

export type CandleSource = 'warmup' | 'live' | 'backfill';

export interface StreamEntry {
  key: string;
  /** `streamKey` of its candles' symbol and interval (= `key`, made by streamKey, in every real case). */
  candleKey: string;
  symbol: string;
  interval: string;
  name: string;
  ms: number;
  /** Open time of the last candle handed to `onClosed`; undefined until warmed up. */
  cursor?: number;
  pending: Map<number, Candle>;
  /** Backfill everything that closed before this market time (0: nothing to do). */
  catchUpBefore: number;
  draining: boolean;
  removed: boolean;
  /** Set when REST refused the symbol: nothing more is asked for this stream. */
  failed?: string;
}

export interface StreamSequencerOptions {
  /** Market time in ms. */
  clock: () => number;
  log: Log;
  metrics: MachineRuntimeMetrics;
  rest: KlinesClient;
  /** The feed's counters; duplicates of closed candles are counted in it. */
  counters: { duplicates: number };
  /** Counts and logs a frame that cannot be used. */
  malformed: (reason: string) => void;
  /** `key`: the candles' `streamKey`, one string per stream (a key built per candle costs its hashing). */
  onClosed: (candles: Candle[], source: CandleSource, key: string) => void;
  onInvalidSymbol?: (symbol: string, reason: string) => void;
  warmupCandles: number;
  pendingLimit: number;
  overdueGraceMs: number;
}

/**
 * Each stream's closed candles handed on exactly once, in order, without gaps: warm-up from REST,
 * then live candles, with holes (seen from a later close or a newer candle forming, or a close
 * overdue) backfilled from REST first. Duplicates are dropped.
 */
export class StreamSequencer {
  private readonly streams = new Map<string, StreamEntry>();
  /**
   * The same streams by symbol, then interval (those whose key is their candles' key): a frame finds
   * its stream without building and hashing a `SYMBOL|interval` string per frame.
   */
  private readonly bySymbol = new Map<string, Map<string, StreamEntry>>();
  private stopped = false;
  /** Labelled children resolved once: a labelled inc() per candle hashes its labels every time. */
  private readonly closedCounters: Record<CandleSource, { inc(n: number): void }>;

  constructor(private readonly o: StreamSequencerOptions) {
    this.closedCounters = {
      warmup: o.metrics.candlesClosed.labels('warmup'),
      live: o.metrics.candlesClosed.labels('live'),
      backfill: o.metrics.candlesClosed.labels('backfill'),
    };
  }

  get size(): number {
    return this.streams.size;
  }

  has(key: string): boolean {
    return this.streams.has(key);
  }

  entries(): IterableIterator<StreamEntry> {
    return this.streams.values();
  }

  /** A new stream, not yet warmed up (`drain` starts it). */
  add(key: string): StreamEntry {
    const { symbol, interval } = parseStreamKey(key);
    const entry: StreamEntry = {
      key,
      candleKey: streamKey(symbol, interval),
      symbol,
      interval,
      name: streamName(symbol, interval),
      ms: intervalMs(interval),
      pending: new Map(),
      catchUpBefore: 0,
      draining: false,
      removed: false,
    };
    this.streams.set(key, entry);
    if (entry.candleKey === key) {
      const intervals = this.bySymbol.get(symbol) ?? new Map<string, StreamEntry>();
      this.bySymbol.set(symbol, intervals.set(interval, entry));
    }
    return entry;
  }

  remove(s: StreamEntry): void {
    s.removed = true;
    this.streams.delete(s.key);
    const intervals = this.bySymbol.get(s.symbol);
    if (intervals?.get(s.interval) !== s) return;
    intervals.delete(s.interval);
    if (intervals.size === 0) this.bySymbol.delete(s.symbol);
  }

  /** The stream `streams.get(streamKey(symbol, interval))` finds, mostly without building that key. */
  private find(symbol: string, interval: string): StreamEntry | undefined {
    return this.bySymbol.get(symbol)?.get(interval) ?? this.streams.get(streamKey(symbol, interval));
  }

  warmingUp(): number {
    return [...this.streams.values()].filter((s) => s.cursor === undefined && !s.failed).length;
  }

  pendingSizes(): number[] {
    return [...this.streams.values()].map((s) => s.pending.size);
  }

  stop(): void {
    this.stopped = true;
  }

  /** A stream that stays silent (illiquid symbol, lost frames) still gets its closes from REST. */
  checkOverdue(): void {
    const market = this.o.clock();
    for (const s of this.streams.values()) {
      if (s.cursor === undefined || s.draining || s.pending.size > 0) continue;
      if (market > s.cursor + 2 * s.ms + this.o.overdueGraceMs) {
        s.catchUpBefore = Math.max(s.catchUpBefore, market);
        this.drain(s);
      }
    }
  }

  onKline(candle: Candle, closed: boolean, eventTime: number | undefined): void {
    const c = candle;
    if (
      !Number.isFinite(c.openTime) ||
      !Number.isFinite(c.closeTime) ||
      !Number.isFinite(c.open) ||
      !Number.isFinite(c.high) ||
      !Number.isFinite(c.low) ||
      !Number.isFinite(c.close) ||
      !Number.isFinite(c.volume)
    ) {
      return this.o.malformed('kline fields');
    }
    if (eventTime !== undefined) this.o.metrics.feedLag.set((this.o.clock() - eventTime) / 1000);
    const s = this.find(candle.symbol, candle.interval);
    if (!s) return; // unsubscribed a moment ago
    if (s.cursor !== undefined && candle.openTime <= s.cursor) {
      if (closed) this.o.counters.duplicates++;
      return;
    }
    if (closed) {
      if (s.cursor !== undefined && candle.openTime === s.cursor + s.ms && this.isIdle(s)) {
        // The common case: the next candle of a stream with nothing held back. What drain() would
        // do, without its promise chain per closed candle.
        return this.emit(s, [toCandle(candle)], 'live');
      }
      if (s.pending.size >= this.o.pendingLimit) {
        // Forget the oldest; the drain sees the hole and asks REST for it.
        s.pending.delete(Math.min(...s.pending.keys()));
      }
      s.pending.set(candle.openTime, toCandle(candle));
    } else if (s.cursor !== undefined && candle.openTime > s.cursor + s.ms) {
      // A newer candle is forming, so every candle before it has closed, seen or not.
      s.catchUpBefore = Math.max(s.catchUpBefore, candle.openTime);
    } else {
      return;
    }
    this.drain(s);
  }

  private isIdle(s: StreamEntry): boolean {
    return !s.draining && s.pending.size === 0 && s.catchUpBefore === 0 && !this.stopped;
  }

  private emit(s: StreamEntry, candles: Candle[], source: CandleSource): void {
    const cursor = s.cursor;
    // A single fresh candle (the live path) is handed on as it is, without a filtered copy.
    const fresh =
      candles.length === 1 && (cursor === undefined || candles[0]!.openTime > cursor)
        ? candles
        : candles.filter((c) => cursor === undefined || c.openTime > cursor);
    if (fresh.length === 0) return;
    s.cursor = fresh[fresh.length - 1]!.openTime;
    this.closedCounters[source].inc(fresh.length);
    this.o.onClosed(fresh, source, s.candleKey);
  }

  /** Serialised per stream: warm-up, then gap backfill and live candles strictly in order. */
  drain(s: StreamEntry): void {
    if (s.draining || this.stopped || s.failed) return;
    s.draining = true;
    this.drainLoop(s)
      .catch((err: unknown) => {
        if (!(err instanceof InvalidSymbolError))
          return this.o.log.error({ err, stream: s.key }, 'stream drain failed');
        s.failed = err.message;
        this.o.log.warn({ stream: s.key, reason: err.message }, 'symbol unknown to Binance; stream stopped');
        this.o.onInvalidSymbol?.(s.symbol, err.message);
      })
      .finally(() => {
        s.draining = false;
      });
  }

  private async drainLoop(s: StreamEntry): Promise<void> {
    while (!this.stopped && !s.removed) {
      if (s.cursor === undefined) {
        const now = this.o.clock();
        const rows = await this.o.rest.pageWithRetry({
          symbol: s.symbol,
          interval: s.interval,
          endTime: now,
          limit: this.o.warmupCandles + 1,
        });
        if (rows === null || s.removed) return;
        const closed = rows.filter((c) => c.closeTime < now).slice(-this.o.warmupCandles);
        if (closed.length > 0) this.emit(s, closed, 'warmup');
        // A symbol without history starts from the last boundary; the live stream carries on.
        else s.cursor = Math.floor(now / s.ms) * s.ms - s.ms;
        continue;
      }
      const cursor = s.cursor;
      for (const t of s.pending.keys()) if (t <= cursor) s.pending.delete(t);
      const next = s.pending.size > 0 ? Math.min(...s.pending.keys()) : undefined;
      const before = next ?? (s.catchUpBefore > cursor + s.ms ? Math.min(s.catchUpBefore, this.o.clock()) : 0);
      if (before > cursor + s.ms) {
        const rows = await this.o.rest.closedRange(s.symbol, s.interval, cursor, before);
        if (rows === null || s.removed) return;
        this.emit(s, rows, 'backfill');
        if (next === undefined) s.catchUpBefore = 0;
        if (s.cursor === cursor && next === undefined) break;
        if (s.cursor === cursor && next !== undefined) {
          // REST has nothing for the hole (it can lag the stream): accept it rather than stall.
          this.o.log.warn({ stream: s.key, from: cursor + s.ms, to: next }, 'gap not available from REST');
          this.emit(s, [s.pending.get(next)!], 'live');
          s.pending.delete(next);
        }
        continue;
      }
      if (next !== undefined) {
        this.emit(s, [s.pending.get(next)!], 'live');
        s.pending.delete(next);
        continue;
      }
      s.catchUpBefore = 0;
      break;
    }
  }
}
