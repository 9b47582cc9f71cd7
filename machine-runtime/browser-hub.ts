import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import type { TokenVerifier } from './auth';
import type { Candle } from './candles';
import { tokenGuard } from './control';
import type { MachineRuntimeMetrics } from './metrics';
import type { TradeSignalMessage } from './trade-signals';

export interface BrowserHubOptions {
  metrics: MachineRuntimeMetrics;
  /** A browser socket with more than this many bytes unsent is dropped (default 1 MB). */
  maxBufferedBytes?: number;
  /** Most candles in one `candles` frame (signals: a fifth of it); a fuller batch is sent at once. */
  batchMax?: number;
}

/**
 * The browsers on `/ws`: every message encoded once and written to each of them, a browser that
 * cannot keep up dropped rather than buffered without bound, closed candles and trade signals sent
 * in batches.
 */
export function createBrowserHub(o: BrowserHubOptions) {
  const { metrics } = o;
  const maxBuffered = o.maxBufferedBytes ?? 1 << 20;
  const clients = new Set<WebSocket>();

  const send = (ws: WebSocket, text: string | Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    // A browser that cannot keep up is dropped rather than buffered without bound.
    if (ws.bufferedAmount > maxBuffered) {
      metrics.wsDropped.inc();
      ws.terminate();
      clients.delete(ws);
      metrics.wsClients.set(clients.size);
      return;
    }
    ws.send(text, { binary: false });
  };
  const broadcast = (msg: Record<string, unknown>) => {
    if (clients.size === 0) return;
    // Encoded once for every client: a text frame from bytes is not re-encoded per socket.
    const frame = Buffer.from(JSON.stringify(msg));
    for (const ws of clients) send(ws, frame);
  };

  // Closed candles and signals go out in batches: all those produced in one turn of the event loop
  // (a boundary's burst of closes arrives in a few turns) become one `candles` and one `signals`
  // frame, encoded once and written once per client, flushed on setImmediate (after the turn's I/O),
  // or at once when a batch is full. Per-item frames cost one socket write per item per client.
  const candleBatchMax = o.batchMax ?? 1_000;
  const signalBatchMax = Math.max(1, Math.floor(candleBatchMax / 5));
  let candleBatch: Candle[] = [];
  let signalBatch: TradeSignalMessage[] = [];
  let flushScheduled = false;
  const flushCandles = () => {
    if (candleBatch.length === 0) return;
    const candles = candleBatch;
    candleBatch = [];
    broadcast({ type: 'candles', candles });
  };
  const flushSignals = () => {
    if (signalBatch.length === 0) return;
    const signals = signalBatch;
    signalBatch = [];
    broadcast({ type: 'signals', signals });
  };
  const flushBatches = () => {
    flushScheduled = false;
    flushCandles();
    flushSignals();
  };
  const scheduleFlush = () => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flushBatches);
  };

  return {
    send,
    broadcast,
    clientCount: () => clients.size,
    queueCandle: (candle: Candle) => {
      if (clients.size === 0) return;
      if (candleBatch.push(candle) >= candleBatchMax) flushCandles();
      else scheduleFlush();
    },
    queueTradeSignal: (signal: TradeSignalMessage) => {
      if (clients.size === 0) return;
      // Candles first, so a signal never reaches a browser before the candle it fired on.
      if (signalBatch.push(signal) >= signalBatchMax) {
        flushCandles();
        flushSignals();
      } else scheduleFlush();
    },
    /** Sends what is batched now (shutdown). */
    flush: flushBatches,
    /** Follows a browser's socket until it closes. */
    add(socket: WebSocket) {
      clients.add(socket);
      metrics.wsClients.set(clients.size);
      socket.on('close', () => {
        clients.delete(socket);
        metrics.wsClients.set(clients.size);
      });
      socket.on('error', () => socket.terminate());
    },
    closeAll(code: number, reason: string) {
      for (const ws of clients) ws.close(code, reason);
    },
  };
}

export type BrowserHub = ReturnType<typeof createBrowserHub>;

/**
 * `GET /ws`, for the API gateway's stream token (or the user's own access token), never a control
 * token: `hello` and the current `state` at once, then whatever the hub broadcasts.
 */
export function registerBrowserRoute(
  app: FastifyInstance,
  deps: { hub: BrowserHub; verify: TokenVerifier; userId: string; streams: () => string[]; health: () => object },
) {
  const { hub } = deps;
  app.get('/ws', { websocket: true, preValidation: tokenGuard({ verify: deps.verify }, 'stream') }, (socket) => {
    hub.add(socket);
    hub.send(
      socket,
      JSON.stringify({
        type: 'hello',
        userId: deps.userId,
        serverTime: new Date().toISOString(),
        traders: deps.streams().length,
        streams: deps.streams(),
      }),
    );
    hub.send(socket, JSON.stringify({ type: 'state', state: deps.health() }));
  });
}
