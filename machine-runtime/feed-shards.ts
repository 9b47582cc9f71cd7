import WebSocket from 'ws';
import { backoffMs, type Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';

/** One Binance connection ("shard") and the stream names it carries. */
export interface Shard {
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

export interface FeedConnectionsOptions {
  wsUrl: string;
  log: Log;
  metrics: MachineRuntimeMetrics;
  /** The feed's counters; connections count their reconnects in it. */
  counters: { reconnects: number };
  /** Every frame a connection receives, as its UTF-8 bytes (null: a binary frame). */
  onFrame: (shard: Shard, data: Buffer | null) => void;
  maxStreamsPerConnection: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  staleMs: number;
  maxConnectionAgeMs: number;
}

const paramsPerControlMessage = 200;

/**
 * The feed's connections: streams spread over as few sockets as Binance allows (1,024 streams each),
 * live changes as paced (UN)SUBSCRIBE frames, reconnects with backoff (at once on rollover and
 * serverShutdown), a stalled connection replaced.
 */
export class FeedConnections {
  private readonly shardOf = new Map<string, Shard>();
  private shards: Shard[] = [];
  private stopped = false;
  private nextShardId = 1;
  private nextControlId = 1;

  constructor(private readonly o: FeedConnectionsOptions) {}

  /**
   * A change of the stream set: `remove` and `add` names in any order, then `commit()` queues the
   * UNSUBSCRIBE and SUBSCRIBE frames, closes connections left empty and opens the new ones.
   */
  change() {
    const subs = new Map<Shard, string[]>();
    const unsubs = new Map<Shard, string[]>();
    const push = (m: Map<Shard, string[]>, s: Shard, name: string) => m.set(s, [...(m.get(s) ?? []), name]);
    return {
      remove: (name: string) => {
        const shard = this.shardOf.get(name);
        this.shardOf.delete(name);
        if (shard) {
          shard.names.delete(name);
          if (shard.connected) push(unsubs, shard, name);
        }
      },
      add: (name: string) => {
        let shard = this.shards.find((sh) => sh.names.size < this.o.maxStreamsPerConnection);
        if (!shard) {
          shard = this.newShard();
          this.shards.push(shard);
        }
        shard.names.add(name);
        this.shardOf.set(name, shard);
        // A socket that exists (even mid-handshake) was opened with an older URL: subscribe live.
        if (shard.ws) push(subs, shard, name);
      },
      commit: () => {
        for (const [shard, names] of unsubs) this.queueControl(shard, 'UNSUBSCRIBE', names);
        for (const [shard, names] of subs) this.queueControl(shard, 'SUBSCRIBE', names);
        for (const shard of this.shards.filter((s) => s.names.size === 0)) this.closeShard(shard);
        this.shards = this.shards.filter((s) => !s.removed);
        for (const shard of this.shards) if (!shard.ws && !shard.timers.length) this.connect(shard);
      },
    };
  }

  get count(): number {
    return this.shards.length;
  }

  connectedCount(): number {
    return this.shards.filter((s) => s.connected).length;
  }

  lastFrameAt(): number {
    return Math.max(0, ...this.shards.map((s) => s.lastFrameAt));
  }

  /** Queues a frame ahead of the (UN)SUBSCRIBE frames waiting, paced like them. */
  sendFirst(shard: Shard, frame: string): void {
    shard.control.unshift(frame);
  }

  /** Drops the connection; it reconnects (at once for `rollover` and `serverShutdown`). */
  restart(shard: Shard, reason: string): void {
    shard.closeReason = reason;
    shard.ws?.terminate();
  }

  /** One frame per connection per tick keeps us under Binance's 5 messages/s. */
  sendControl(): void {
    for (const shard of this.shards) {
      if (!shard.connected || !shard.ws || shard.control.length === 0) continue;
      shard.ws.send(shard.control.shift()!);
    }
  }

  /** Replaces every connection silent for longer than `staleMs`. */
  checkStalled(): void {
    const now = Date.now();
    for (const shard of this.shards) {
      if (shard.connected && now - shard.lastFrameAt > this.o.staleMs) {
        this.o.log.warn({ shard: shard.id }, 'feed stalled; reconnecting');
        this.restart(shard, 'stale');
      }
    }
  }

  stop(): void {
    this.stopped = true;
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
    const url = `${this.o.wsUrl.replace(/\/$/, '')}/stream?streams=${[...shard.names].join('/')}`;
    const ws = new WebSocket(url, { handshakeTimeout: 10_000, maxPayload: 1 << 20 });
    shard.ws = ws;
    ws.on('open', () => {
      shard.connected = true;
      shard.lastFrameAt = Date.now();
      if (shard.opens++ > 0) {
        this.o.counters.reconnects++;
        this.o.metrics.feedReconnects.inc({ reason: shard.closeReason });
      }
      shard.closeReason = 'closed';
      this.updateConnectionGauge();
      this.o.log.info({ shard: shard.id, streams: shard.names.size }, 'feed connected');
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
      // The bytes, not a string: the feed reads Binance's frames in place (feed-frames.ts).
      this.o.onFrame(shard, isBinary ? null : asBuffer(data));
    });
    ws.on('error', (err) => {
      this.o.log.warn({ shard: shard.id, err: err.message }, 'feed socket error');
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
      this.o.log.warn({ shard: shard.id, reason: shard.closeReason, delay }, 'feed disconnected; reconnecting');
      const t = setTimeout(() => this.connect(shard), delay);
      t.unref();
      shard.timers.push(t);
    });
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
    this.o.metrics.feedConnections.set(this.shards.filter((s) => s.connected).length);
  }

  private queueControl(shard: Shard, method: 'SUBSCRIBE' | 'UNSUBSCRIBE', names: string[]): void {
    for (let i = 0; i < names.length; i += paramsPerControlMessage) {
      const params = names.slice(i, i + paramsPerControlMessage);
      shard.control.push(JSON.stringify({ method, params, id: this.nextControlId++ }));
    }
  }
}

/** A message's data as one Buffer (what ws hands over with its default `binaryType`, `nodebuffer`). */
function asBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
