import { streamMessageSchema, type StreamMessage, type StreamMessageOf, type StreamMessageType } from './schemas';
import {
  connectionHealth,
  newConnectionRecord,
  type ConnectionHealth,
  type StopReason,
  type StreamState,
} from './stream-health';
import { DEFAULT_BACKOFF, reconnectDelay, refusedUpgradeStop, TERMINAL_CLOSES } from './stream-reconnect';

// The health types are part of this module's public surface (client/index.ts re-exports them from here).
export type { ConnectionHealth, ConnectionMetrics, StopReason, StreamState } from './stream-health';

/** The part of the WHATWG WebSocket the client uses: browsers, Node ≥ 22, Deno and the `ws` package have it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: SocketListener): void;
}
// A method type, so listeners of every implementation's own event types are accepted (bivariance).
type SocketListener = { bivarianceHack(event: unknown): void }['bivarianceHack'];
export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike;

type TokenProvider = () => string | null | undefined | Promise<string | null | undefined>;

export type ProbeResult = 'ok' | 'no_machine' | 'unauthorized';

export interface CloudStreamOptions {
  /** `ws(s)://<api>/v1/machines/me/stream`. */
  url: string;
  /** Called before every attempt, so a refreshed token is used on reconnect. */
  getAccessToken: TokenProvider;
  /** Default `globalThis.WebSocket`; on Node 20 pass the `ws` package's `WebSocket`. */
  WebSocket?: WebSocketConstructorLike;
  backoff?: { initialMs?: number; maxMs?: number; factor?: number; jitter?: number };
  /** Consecutive failed attempts before giving up; default unlimited. */
  maxReconnectAttempts?: number;
  /** Default 15 s. */
  staleAfterMs?: number;
  /**
   * Asked after a handshake fails, because browsers hide the HTTP status of a refused upgrade:
   * `createCloudExecutionClient().stream()` asks the status route.
   */
  probe?: () => Promise<ProbeResult>;
}

/**
 * Typed handlers per message type. The runtime sends candles and signals in batches (`candles`,
 * `signals`); `candle` and `signal` handlers are called once per item of a batch, as before batching.
 */
export type StreamHandlers = { [K in StreamMessageType]: (message: StreamMessageOf<K>) => void } & {
  /** Every frame: the raw text and, when it is one of the known messages, the parsed message. */
  message: (raw: string, message: StreamMessage | undefined) => void;
  /** Every change of state. */
  connection: (health: ConnectionHealth) => void;
};

export interface CloudStreamClient {
  connect(): void;
  disconnect(): void;
  /** Sends a text frame (objects as JSON); false when not open. */
  send(data: string | object): boolean;
  on<E extends keyof StreamHandlers>(event: E, handler: StreamHandlers[E]): () => void;
  getConnectionHealth(): ConnectionHealth;
  readonly state: StreamState;
}

const OPEN = 1;

export function createCloudStreamClient(options: CloudStreamOptions): CloudStreamClient {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
  const backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  const maxAttempts = options.maxReconnectAttempts ?? Infinity;
  const staleAfterMs = options.staleAfterMs ?? 15_000;

  // Metrics, timestamps, the attempt counter, the last close and why it stopped: what health() reports.
  const record = newConnectionRecord();
  const { metrics } = record;
  const handlers = new Map<keyof StreamHandlers, Set<(...args: never[]) => void>>();
  let state: StreamState = 'idle';
  let socket: WebSocketLike | null = null;
  // Bumped by connect/disconnect: callbacks of an older attempt see they are stale and do nothing.
  let generation = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const emit = <E extends keyof StreamHandlers>(event: E, ...args: Parameters<StreamHandlers[E]>) => {
    for (const h of handlers.get(event) ?? []) {
      try {
        (h as unknown as (...a: unknown[]) => void)(...args);
      } catch (err) {
        // One throwing handler must not stop the others or the socket; report it asynchronously.
        setTimeout(() => {
          throw err;
        });
      }
    }
  };

  const health = (): ConnectionHealth => connectionHealth(state, record, staleAfterMs);

  const setState = (next: StreamState) => {
    state = next;
    emit('connection', health());
  };

  const clearTimer = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    record.nextReconnectAt = null;
  };

  const stop = (reason: StopReason) => {
    generation++;
    clearTimer();
    record.stopReason = reason;
    record.connectedAt = null;
    setState('closed');
  };

  const scheduleReconnect = (gen: number) => {
    if (record.attempt >= maxAttempts) return stop('max_attempts');
    const delay = reconnectDelay(backoff, record.attempt);
    record.attempt++;
    record.nextReconnectAt = Date.now() + delay;
    timer = setTimeout(() => {
      timer = null;
      record.nextReconnectAt = null;
      if (gen === generation) void open(gen, true);
    }, delay);
    setState('reconnecting');
  };

  async function open(gen: number, isReconnect: boolean) {
    if (!Ctor) return;
    if (state !== 'connecting') setState('connecting');
    let token: string | null | undefined;
    try {
      token = await options.getAccessToken();
    } catch {
      token = null;
    }
    if (gen !== generation) return;
    if (!token) return stop('unauthorized');

    metrics.connectionAttempts++;
    if (isReconnect) metrics.reconnections++;
    const startedAt = Date.now();
    let opened = false;
    let sawHello = false;
    let errorText = '';
    let ws: WebSocketLike;
    try {
      ws = new Ctor(options.url, ['bearer', token]);
    } catch {
      metrics.failedConnections++;
      return scheduleReconnect(gen);
    }
    socket = ws;

    ws.addEventListener('open', () => {
      if (socket !== ws) return;
      opened = true;
      metrics.successfulConnections++;
      record.connectedAt = Date.now();
      setState('open');
    });
    ws.addEventListener('message', (event: { data: unknown }) => {
      if (socket !== ws) return;
      const raw = typeof event.data === 'string' ? event.data : String(event.data);
      metrics.messagesReceived++;
      const receivedAt = Date.now();
      record.lastMessageAt = receivedAt;
      // Frames flow end to end: the next failure starts the backoff from the beginning again.
      record.attempt = 0;
      let message: StreamMessage | undefined;
      try {
        const parsed = streamMessageSchema.safeParse(JSON.parse(raw));
        if (parsed.success) message = parsed.data;
      } catch {
        // Not JSON: still handed to `message` handlers as raw text.
      }
      if (message?.type === 'hello' && !sawHello) {
        sawHello = true;
        record.roundTripMs = receivedAt - startedAt;
      }
      emit('message', raw, message);
      if (!message) return;
      emit(message.type, message as never);
      // A batch is also handed on item by item, so per-candle / per-signal handlers see no difference.
      if (message.type === 'candles') for (const candle of message.candles) emit('candle', { type: 'candle', candle });
      if (message.type === 'signals') for (const signal of message.signals) emit('signal', { type: 'signal', signal });
    });
    ws.addEventListener('error', (event: { message?: unknown }) => {
      if (typeof event.message === 'string') errorText = event.message;
    });
    ws.addEventListener('close', (event: { code: number; reason: string }) => {
      if (socket !== ws) return;
      socket = null;
      record.connectedAt = null;
      record.lastClose = { code: event.code, reason: event.reason, at: Date.now() };
      if (!opened) metrics.failedConnections++;
      void afterClose(gen, event.code, opened, errorText);
    });
  }

  async function afterClose(gen: number, code: number, opened: boolean, errorText: string) {
    if (gen !== generation) return;
    const terminal = TERMINAL_CLOSES[code];
    if (terminal) return stop(terminal);
    if (!opened) {
      // Node's `ws` names the refused upgrade's status in its error; browsers say nothing.
      const refused = refusedUpgradeStop(errorText);
      if (refused) return stop(refused);
      if (options.probe) {
        let verdict: ProbeResult = 'ok';
        try {
          verdict = await options.probe();
        } catch {
          verdict = 'ok';
        }
        if (gen !== generation) return;
        if (verdict !== 'ok') return stop(verdict);
      }
    }
    scheduleReconnect(gen);
  }

  return {
    get state() {
      return state;
    },
    connect() {
      if (!Ctor) throw new Error('no WebSocket implementation: pass `WebSocket` (e.g. from the ws package on Node 20)');
      if (state === 'connecting' || state === 'open' || state === 'reconnecting') return;
      const gen = ++generation;
      record.attempt = 0;
      record.stopReason = null;
      void open(gen, false);
    },
    disconnect() {
      const ws = socket;
      socket = null;
      if (ws && ws.readyState <= OPEN) ws.close(1000, 'client disconnect');
      if (state === 'idle' || state === 'closed') generation++;
      else stop('disconnected');
    },
    send(data) {
      if (!socket || socket.readyState !== OPEN) return false;
      socket.send(typeof data === 'string' ? data : JSON.stringify(data));
      metrics.messagesSent++;
      return true;
    },
    on(event, handler) {
      let set = handlers.get(event);
      if (!set) handlers.set(event, (set = new Set()));
      const h = handler as (...args: never[]) => void;
      set.add(h);
      return () => void set.delete(h);
    },
    getConnectionHealth: health,
  };
}
