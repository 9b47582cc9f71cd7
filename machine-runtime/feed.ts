import type { Candle } from './candles';
import { parseFrame, scanKline, scannedKline } from './feed-frames';
import { FeedConnections, type Shard } from './feed-shards';
import { StreamSequencer, type CandleSource } from './feed-streams';
import type { Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';
import { KlinesClient } from './rest';

export interface FeedOptions {
  wsUrl: string;
  restUrl: string;
  /** Market time in ms (Date.now in production, the replay's clock in tests). */
  clock: () => number;
  log: Log;
  metrics: MachineRuntimeMetrics;
  /**
   * Receives each closed candle exactly once per stream, in open-time order, without gaps; `key` is
   * their `streamKey`, the same string for every call of a stream.
   */
  onClosed: (candles: Candle[], source: CandleSource, key: string) => void;
  /** Binance REST does not know a stream's symbol (-1121): the stream stops asking; drop its traders. */
  onInvalidSymbol?: (symbol: string, reason: string) => void;
  /** Binance allows 1,024 streams per connection. */
  maxStreamsPerConnection?: number;
  /** Binance disconnects above 5 incoming messages per second; control frames are paced below that. */
  controlPerSecond?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** No frame (data or ping) for this long means a stalled connection: reconnect. */
  staleMs?: number;
  /** Binance cuts connections at 24 h; reconnect on our own terms before that. */
  maxConnectionAgeMs?: number;
  warmupCandles?: number;
  /** Live closed candles held while a stream is warming up or backfilling; beyond it REST refills. */
  pendingLimit?: number;
  /** How late (market ms) a candle close may be before REST is asked for it. */
  overdueGraceMs?: number;
  restTimeoutMs?: number;
  restRetryBaseMs?: number;
}

/**
 * Binance combined kline streams with sharding, pacing, reconnects and REST warm-up/backfill: the
 * connections (feed-shards.ts), each frame read (feed-frames.ts) and handed to the stream it belongs
 * to, whose closed candles go on exactly once, in order (feed-streams.ts).
 */
export class BinanceFeed {
  private readonly streams: StreamSequencer;
  private readonly connections: FeedConnections;
  private readonly rest: KlinesClient;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private counters = { malformed: 0, duplicates: 0, reconnects: 0, messages: 0 };
  /** Filled by each frame read in place; the streams copy what they keep. */
  private readonly kline = scannedKline();
  private readonly feedMessages: { inc(): void };
  private readonly o: Required<
    Omit<FeedOptions, 'onClosed' | 'onInvalidSymbol' | 'log' | 'metrics' | 'clock' | 'wsUrl' | 'restUrl'>
  >;

  constructor(private readonly opts: FeedOptions) {
    this.o = {
      maxStreamsPerConnection: opts.maxStreamsPerConnection ?? 1024,
      controlPerSecond: opts.controlPerSecond ?? 4,
      reconnectBaseMs: opts.reconnectBaseMs ?? 500,
      reconnectMaxMs: opts.reconnectMaxMs ?? 30_000,
      staleMs: opts.staleMs ?? 60_000,
      maxConnectionAgeMs: opts.maxConnectionAgeMs ?? 23.5 * 3_600_000,
      warmupCandles: opts.warmupCandles ?? 300,
      pendingLimit: opts.pendingLimit ?? 500,
      overdueGraceMs: opts.overdueGraceMs ?? 10_000,
      restTimeoutMs: opts.restTimeoutMs ?? 10_000,
      restRetryBaseMs: opts.restRetryBaseMs ?? 500,
    };
    this.feedMessages = opts.metrics.feedMessages;
    this.rest = new KlinesClient({
      restUrl: opts.restUrl,
      log: opts.log,
      metrics: opts.metrics,
      timeoutMs: this.o.restTimeoutMs,
      retryBaseMs: this.o.restRetryBaseMs,
      isStopped: () => this.stopped,
    });
    this.streams = new StreamSequencer({
      clock: opts.clock,
      log: opts.log,
      metrics: opts.metrics,
      rest: this.rest,
      counters: this.counters,
      malformed: (reason) => this.malformed(reason),
      onClosed: opts.onClosed,
      onInvalidSymbol: opts.onInvalidSymbol,
      warmupCandles: this.o.warmupCandles,
      pendingLimit: this.o.pendingLimit,
      overdueGraceMs: this.o.overdueGraceMs,
    });
    this.connections = new FeedConnections({
      wsUrl: opts.wsUrl,
      log: opts.log,
      metrics: opts.metrics,
      counters: this.counters,
      onFrame: (shard, text) => this.onFrame(shard, text),
      maxStreamsPerConnection: this.o.maxStreamsPerConnection,
      reconnectBaseMs: this.o.reconnectBaseMs,
      reconnectMaxMs: this.o.reconnectMaxMs,
      staleMs: this.o.staleMs,
      maxConnectionAgeMs: this.o.maxConnectionAgeMs,
    });
    const tick = Math.max(50, Math.floor(1000 / this.o.controlPerSecond));
    this.timers.push(setInterval(() => this.connections.sendControl(), tick));
    this.timers.push(setInterval(() => this.watchdog(), Math.max(100, Math.floor(this.o.staleMs / 4))));
    for (const t of this.timers) t.unref();
  }

  /** Subscribes to exactly these `SYMBOL|interval` keys; live changes go out as paced (UN)SUBSCRIBE frames. */
  setStreams(keys: Iterable<string>): void {
    if (this.stopped) return;
    const wanted = new Set(keys);
    const change = this.connections.change();
    for (const s of this.streams.entries()) {
      if (wanted.has(s.key)) continue;
      this.streams.remove(s);
      change.remove(s.name);
    }
    for (const key of wanted) {
      if (this.streams.has(key)) continue;
      const entry = this.streams.add(key);
      change.add(entry.name);
      this.streams.drain(entry);
    }
    change.commit();
    this.opts.metrics.feedStreams.set(this.streams.size);
  }

  status() {
    const connectedShards = this.connections.connectedCount();
    return {
      connected: connectedShards === this.connections.count,
      shards: this.connections.count,
      connectedShards,
      streams: this.streams.size,
      warmingUp: this.streams.warmingUp(),
      lastFrameAt: this.connections.lastFrameAt(),
      ...this.counters,
    };
  }

  /** Number of live candles held back per stream (for boundedness checks). */
  pendingSizes(): number[] {
    return this.streams.pendingSizes();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.streams.stop();
    for (const t of this.timers) clearInterval(t);
    this.connections.stop();
  }

  private watchdog(): void {
    this.connections.checkStalled();
    this.streams.checkOverdue();
  }

  private malformed(reason: string): void {
    this.counters.malformed++;
    this.opts.metrics.feedMalformed.inc();
    this.opts.log.debug({ reason }, 'malformed frame ignored');
  }

  private onFrame(shard: Shard, data: Buffer | null): void {
    this.counters.messages++;
    this.feedMessages.inc();
    if (data === null) return this.malformed('binary');
    const kline = this.kline;
    if (scanKline(data, kline)) return this.streams.onKline(kline, kline.closed, kline.eventTime);
    const frame = parseFrame(data.toString());
    switch (frame.kind) {
      case 'malformed':
        return this.malformed(frame.reason);
      case 'ping':
        // Application-level ping (some gateways): answer in kind, paced like any control frame.
        return this.connections.sendFirst(shard, JSON.stringify({ pong: frame.ping }));
      case 'reply':
        if (frame.error) this.opts.log.warn({ error: frame.error, id: frame.id }, 'control frame refused');
        return;
      case 'serverShutdown':
        this.opts.log.warn({ shard: shard.id }, 'serverShutdown received; reconnecting');
        return this.connections.restart(shard, 'serverShutdown');
      case 'kline':
        return this.streams.onKline(frame.candle, frame.closed, frame.eventTime);
      case 'other':
        return;
    }
  }
}
