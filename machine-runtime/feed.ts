import WebSocket from 'ws';
import { intervalMs, parseStreamKey, streamKey, streamName, type Candle } from './candles';
import { backoffMs, type Log } from './log';
import type { RuntimeMetrics } from './metrics';
import { InvalidSymbolError, KlinesClient } from './rest';

export type CandleSource = 'warmup' | 'live' | 'backfill';

export interface FeedOptions {
  wsUrl: string;
  restUrl: string;
  /** Market time in ms (Date.now in production, the replay's clock in tests). */
  clock: () => number;
  log: Log;
  metrics: RuntimeMetrics;
  /** Receives each closed candle exactly once per stream, in open-time order, without gaps. */
  onClosed: (candles: Candle[], source: CandleSource) => void;
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

interface StreamEntry {
  key: string;
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

interface Shard {
  id: number;
  names: Set<string>;
  ws?: WebSocket;
  connected: boolean;
  attempts: number;
  opens: number;
  control: string[];
  lastFrameAt: number;
  closeReason: string;
  timers: NodeJS.Timeout[];
  removed: boolean;
}

const paramsPerControlMessage = 200;

/** Binance combined kline streams with sharding, pacing, reconnects and REST warm-up/backfill. */
export class BinanceFeed {
  private readonly streams = new Map<string, StreamEntry>();
  private readonly shardOf = new Map<string, Shard>();
  private shards: Shard[] = [];
  private readonly rest: KlinesClient;
  private stopped = false;
  private nextShardId = 1;
  private nextControlId = 1;
  private timers: NodeJS.Timeout[] = [];
  private counters = { malformed: 0, duplicates: 0, reconnects: 0, messages: 0 };
  private readonly feedMessages: { inc(): void };
  /** Labelled children resolved once: a labelled inc() per candle hashes its labels every time. */
  private readonly closedCounters: Record<CandleSource, { inc(n: number): void }>;
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
    this.closedCounters = {
      warmup: opts.metrics.candlesClosed.labels('warmup'),
      live: opts.metrics.candlesClosed.labels('live'),
      backfill: opts.metrics.candlesClosed.labels('backfill'),
    };
    this.rest = new KlinesClient({
      restUrl: opts.restUrl,
      log: opts.log,
      metrics: opts.metrics,
      timeoutMs: this.o.restTimeoutMs,
      retryBaseMs: this.o.restRetryBaseMs,
      isStopped: () => this.stopped,
    });
    const tick = Math.max(50, Math.floor(1000 / this.o.controlPerSecond));
    this.timers.push(setInterval(() => this.sendControl(), tick));
    this.timers.push(setInterval(() => this.watchdog(), Math.max(100, Math.floor(this.o.staleMs / 4))));
    for (const t of this.timers) t.unref();
  }

  /** Subscribes to exactly these `SYMBOL|interval` keys; live changes go out as paced (UN)SUBSCRIBE frames. */
  setStreams(keys: Iterable<string>): void {
    if (this.stopped) return;
    const wanted = new Set(keys);
    const subs = new Map<Shard, string[]>();
    const unsubs = new Map<Shard, string[]>();
    const push = (m: Map<Shard, string[]>, s: Shard, name: string) => m.set(s, [...(m.get(s) ?? []), name]);

    for (const [key, s] of this.streams) {
      if (wanted.has(key)) continue;
      s.removed = true;
      this.streams.delete(key);
      const shard = this.shardOf.get(s.name);
      this.shardOf.delete(s.name);
      if (shard) {
        shard.names.delete(s.name);
        if (shard.connected) push(unsubs, shard, s.name);
      }
    }
    for (const key of wanted) {
      if (this.streams.has(key)) continue;
      const { symbol, interval } = parseStreamKey(key);
      const entry: StreamEntry = {
        key,
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
      let shard = this.shards.find((sh) => sh.names.size < this.o.maxStreamsPerConnection);
      if (!shard) {
        shard = this.newShard();
        this.shards.push(shard);
      }
      shard.names.add(entry.name);
      this.shardOf.set(entry.name, shard);
      // A socket that exists (even mid-handshake) was opened with an older URL: subscribe live.
      if (shard.ws) push(subs, shard, entry.name);
      this.drain(entry);
    }
    for (const [shard, names] of unsubs) this.queueControl(shard, 'UNSUBSCRIBE', names);
    for (const [shard, names] of subs) this.queueControl(shard, 'SUBSCRIBE', names);
    for (const shard of this.shards.filter((s) => s.names.size === 0)) this.closeShard(shard);
    this.shards = this.shards.filter((s) => !s.removed);
    for (const shard of this.shards) if (!shard.ws && !shard.timers.length) this.connect(shard);
    this.opts.metrics.feedStreams.set(this.streams.size);
  }

  status() {
    const connectedShards = this.shards.filter((s) => s.connected).length;
    return {
      connected: connectedShards === this.shards.length,
      shards: this.shards.length,
      connectedShards,
      streams: this.streams.size,
      warmingUp: [...this.streams.values()].filter((s) => s.cursor === undefined && !s.failed).length,
      lastFrameAt: Math.max(0, ...this.shards.map((s) => s.lastFrameAt)),
      ...this.counters,
    };
  }

  /** Number of live candles held back per stream (for boundedness checks). */
  pendingSizes(): number[] {
    return [...this.streams.values()].map((s) => s.pending.size);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const shard of this.shards) this.closeShard(shard);
    this.shards = [];
  }

  private newShard(): Shard {
    return {
      id: this.nextShardId++,
      names: new Set(),
      connected: false,
      attempts: 0,
      opens: 0,
      control: [],
      lastFrameAt: 0,
      closeReason: 'closed',
      timers: [],
      removed: false,
    };
  }

  private connect(shard: Shard): void {
    if (this.stopped || shard.removed || shard.names.size === 0) return;
    this.clearShardTimers(shard);
    // The URL carries the whole current set, so control frames queued for an older socket are moot.
    shard.control = [];
    const url = `${this.opts.wsUrl.replace(/\/$/, '')}/stream?streams=${[...shard.names].join('/')}`;
    const ws = new WebSocket(url, { handshakeTimeout: 10_000, maxPayload: 1 << 20 });
    shard.ws = ws;
    ws.on('open', () => {
      shard.connected = true;
      shard.lastFrameAt = Date.now();
      if (shard.opens++ > 0) {
        this.counters.reconnects++;
        this.opts.metrics.feedReconnects.inc({ reason: shard.closeReason });
      }
      shard.closeReason = 'closed';
      this.updateConnectionGauge();
      this.opts.log.info({ shard: shard.id, streams: shard.names.size }, 'feed connected');
      const age = setTimeout(() => this.restart(shard, 'rollover'), this.o.maxConnectionAgeMs);
      age.unref();
      shard.timers.push(age);
    });
    ws.on('ping', () => {
      shard.lastFrameAt = Date.now();
    });
    ws.on('message', (data, isBinary) => {
      shard.lastFrameAt = Date.now();
      // A frame proves the connection works: only now forget earlier failures.
      shard.attempts = 0;
      this.onFrame(shard, isBinary ? null : data.toString());
    });
    ws.on('error', (err) => {
      this.opts.log.warn({ shard: shard.id, err: err.message }, 'feed socket error');
    });
    ws.on('close', () => {
      if (shard.ws !== ws) return;
      shard.ws = undefined;
      shard.connected = false;
      this.updateConnectionGauge();
      this.clearShardTimers(shard);
      if (this.stopped || shard.removed) return;
      const immediate = shard.closeReason === 'rollover' || shard.closeReason === 'serverShutdown';
      const delay = immediate ? 0 : backoffMs(shard.attempts++, this.o.reconnectBaseMs, this.o.reconnectMaxMs);
      this.opts.log.warn({ shard: shard.id, reason: shard.closeReason, delay }, 'feed disconnected; reconnecting');
      const t = setTimeout(() => this.connect(shard), delay);
      t.unref();
      shard.timers.push(t);
    });
  }

  private restart(shard: Shard, reason: string): void {
    shard.closeReason = reason;
    shard.ws?.terminate();
  }

  private closeShard(shard: Shard): void {
    shard.removed = true;
    this.clearShardTimers(shard);
    const ws = shard.ws;
    shard.ws = undefined;
    shard.connected = false;
    ws?.terminate();
    this.updateConnectionGauge();
  }

  private clearShardTimers(shard: Shard): void {
    for (const t of shard.timers) clearTimeout(t);
    shard.timers = [];
  }

  private updateConnectionGauge(): void {
    this.opts.metrics.feedConnections.set(this.shards.filter((s) => s.connected).length);
  }

  private queueControl(shard: Shard, method: 'SUBSCRIBE' | 'UNSUBSCRIBE', names: string[]): void {
    for (let i = 0; i < names.length; i += paramsPerControlMessage) {
      const params = names.slice(i, i + paramsPerControlMessage);
      shard.control.push(JSON.stringify({ method, params, id: this.nextControlId++ }));
    }
  }

  /** One frame per connection per tick keeps us under Binance's 5 messages/s. */
  private sendControl(): void {
    for (const shard of this.shards) {
      if (!shard.connected || !shard.ws || shard.control.length === 0) continue;
      shard.ws.send(shard.control.shift()!);
    }
  }

  private watchdog(): void {
    const now = Date.now();
    for (const shard of this.shards) {
      if (shard.connected && now - shard.lastFrameAt > this.o.staleMs) {
        this.opts.log.warn({ shard: shard.id }, 'feed stalled; reconnecting');
        this.restart(shard, 'stale');
      }
    }
    // A stream that stays silent (illiquid symbol, lost frames) still gets its closes from REST.
    const market = this.opts.clock();
    for (const s of this.streams.values()) {
      if (s.cursor === undefined || s.draining || s.pending.size > 0) continue;
      if (market > s.cursor + 2 * s.ms + this.o.overdueGraceMs) {
        s.catchUpBefore = Math.max(s.catchUpBefore, market);
        this.drain(s);
      }
    }
  }

  private malformed(reason: string): void {
    this.counters.malformed++;
    this.opts.metrics.feedMalformed.inc();
    this.opts.log.debug({ reason }, 'malformed frame ignored');
  }

  private onFrame(shard: Shard, text: string | null): void {
    this.counters.messages++;
    this.feedMessages.inc();
    if (text === null) return this.malformed('binary');
    const kline = scanKlineFrame(text);
    if (kline) return this.onKline(kline, kline.closed, kline.eventTime);
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.malformed('json');
    }
    if (typeof msg !== 'object' || msg === null) return this.malformed('not an object');
    const m = msg as Record<string, unknown>;
    if ('ping' in m) {
      // Application-level ping (some gateways): answer in kind, paced like any control frame.
      shard.control.unshift(JSON.stringify({ pong: m.ping }));
      return;
    }
    if ('id' in m && ('result' in m || 'error' in m)) {
      if (m.error) this.opts.log.warn({ error: m.error, id: m.id }, 'control frame refused');
      return;
    }
    const data = m.data as Record<string, unknown> | undefined;
    if (typeof data !== 'object' || data === null) return this.malformed('no data');
    if (data.e === 'serverShutdown') {
      this.opts.log.warn({ shard: shard.id }, 'serverShutdown received; reconnecting');
      return this.restart(shard, 'serverShutdown');
    }
    if (data.e !== 'kline') return;
    const k = data.k as Record<string, unknown> | undefined;
    if (typeof k !== 'object' || k === null) return this.malformed('kline without k');
    const candle: Candle = {
      symbol: String(k.s ?? data.s ?? ''),
      interval: String(k.i ?? ''),
      openTime: Number(k.t),
      closeTime: Number(k.T),
      open: Number(k.o),
      high: Number(k.h),
      low: Number(k.l),
      close: Number(k.c),
      volume: Number(k.v),
    };
    if (typeof k.x !== 'boolean') return this.malformed('kline fields');
    this.onKline(candle, k.x, typeof data.E === 'number' ? data.E : undefined);
  }

  private onKline(candle: Candle, closed: boolean, eventTime: number | undefined): void {
    const numbers = [candle.openTime, candle.closeTime, candle.open, candle.high, candle.low, candle.close];
    if (!numbers.every(Number.isFinite) || !Number.isFinite(candle.volume)) {
      return this.malformed('kline fields');
    }
    if (eventTime !== undefined) this.opts.metrics.feedLag.set((this.opts.clock() - eventTime) / 1000);
    const s = this.streams.get(streamKey(candle.symbol, candle.interval));
    if (!s) return; // unsubscribed a moment ago
    if (s.cursor !== undefined && candle.openTime <= s.cursor) {
      if (closed) this.counters.duplicates++;
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
    const fresh = candles.filter((c) => s.cursor === undefined || c.openTime > s.cursor);
    if (fresh.length === 0) return;
    s.cursor = fresh[fresh.length - 1]!.openTime;
    this.closedCounters[source].inc(fresh.length);
    this.opts.onClosed(fresh, source);
  }

  /** Serialised per stream: warm-up, then gap backfill and live candles strictly in order. */
  private drain(s: StreamEntry): void {
    if (s.draining || this.stopped || s.failed) return;
    s.draining = true;
    this.drainLoop(s)
      .catch((err: unknown) => {
        if (!(err instanceof InvalidSymbolError))
          return this.opts.log.error({ err, stream: s.key }, 'stream drain failed');
        s.failed = err.message;
        this.opts.log.warn({ stream: s.key, reason: err.message }, 'symbol unknown to Binance; stream stopped');
        this.opts.onInvalidSymbol?.(s.symbol, err.message);
      })
      .finally(() => {
        s.draining = false;
      });
  }

  private async drainLoop(s: StreamEntry): Promise<void> {
    while (!this.stopped && !s.removed) {
      if (s.cursor === undefined) {
        const now = this.opts.clock();
        const rows = await this.rest.pageWithRetry({
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
      const before = next ?? (s.catchUpBefore > cursor + s.ms ? Math.min(s.catchUpBefore, this.opts.clock()) : 0);
      if (before > cursor + s.ms) {
        const rows = await this.rest.closedRange(s.symbol, s.interval, cursor, before);
        if (rows === null || s.removed) return;
        this.emit(s, rows, 'backfill');
        if (next === undefined) s.catchUpBefore = 0;
        if (s.cursor === cursor && next === undefined) break;
        if (s.cursor === cursor && next !== undefined) {
          // REST has nothing for the hole (it can lag the stream): accept it rather than stall.
          this.opts.log.warn({ stream: s.key, from: cursor + s.ms, to: next }, 'gap not available from REST');
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

/** A candle of its own (a scanned kline carries extra fields that must not travel on). */
function toCandle(c: Candle): Candle {
  return {
    symbol: c.symbol,
    interval: c.interval,
    openTime: c.openTime,
    closeTime: c.closeTime,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
  };
}

/**
 * Reads a combined-stream kline frame without JSON.parse when it is laid out exactly as Binance sends
 * it (machine-runtime/README.md, "Feed"): the keys in Binance's order, no whitespace, no escapes.
 * JSON.parse would build an object tree with a string per field for every frame, most of them
 * updates of a candle still forming; this reads the fields in place. Numbers are converted exactly as
 * the general path converts them (`Number(...)`). Anything that deviates by a character returns
 * undefined and takes the general path (JSON.parse), which also decides what is malformed.
 */
export function scanKlineFrame(text: string): (Candle & { closed: boolean; eventTime: number }) | undefined {
  let p = 0;
  let ok = true;
  const lit = (s: string) => {
    if (ok && text.startsWith(s, p)) p += s.length;
    else ok = false;
  };
  // After an opening quote: the string up to the closing one (no escapes: a key or number never has one).
  const str = (): string => {
    if (!ok) return '';
    const end = text.indexOf('"', p);
    const v = end < 0 ? '\\' : text.slice(p, end);
    if (v.includes('\\')) {
      ok = false;
      return '';
    }
    p = end + 1;
    return v;
  };
  // A bare JSON number (digits, sign, point, exponent).
  const num = (): number => {
    if (!ok) return NaN;
    const start = p;
    for (
      let ch = text.charCodeAt(p);
      (ch >= 48 && ch <= 57) || ch === 45 || ch === 43 || ch === 46 || ch === 101 || ch === 69;
    ) {
      ch = text.charCodeAt(++p);
    }
    if (p === start) ok = false;
    return Number(text.slice(start, p));
  };
  lit('{"stream":"');
  str();
  lit(',"data":{"e":"kline","E":');
  const eventTime = num();
  lit(',"s":"');
  str();
  lit(',"k":{"t":');
  const openTime = num();
  lit(',"T":');
  const closeTime = num();
  lit(',"s":"');
  const symbol = str();
  lit(',"i":"');
  const interval = str();
  lit(',"f":');
  num();
  lit(',"L":');
  num();
  lit(',"o":"');
  const open = Number(str());
  lit(',"c":"');
  const close = Number(str());
  lit(',"h":"');
  const high = Number(str());
  lit(',"l":"');
  const low = Number(str());
  lit(',"v":"');
  const volume = Number(str());
  lit(',"n":');
  num();
  lit(',"x":');
  const closed = ok && text.startsWith('true', p);
  lit(closed ? 'true' : 'false');
  lit(',"q":"');
  str();
  lit(',"V":"');
  str();
  lit(',"Q":"');
  str();
  lit(',"B":"');
  str();
  lit('}}}');
  if (!ok || p !== text.length) return undefined;
  return { symbol, interval, openTime, closeTime, open, high, low, close, volume, closed, eventTime };
}
