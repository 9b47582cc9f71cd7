import type { FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
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

  /** False (and the browser dropped) when it cannot keep up: dropped rather than buffered without bound. */
  const writable = (ws: WebSocket) => {
    if (ws.readyState !== WebSocket.OPEN) return false;
    if (ws.bufferedAmount <= maxBuffered) return true;
    metrics.wsDropped.inc();
    ws.terminate();
    clients.delete(ws);
    metrics.wsClients.set(clients.size);
    return false;
  };
  const send = (ws: WebSocket, text: string | Buffer) => {
    if (writable(ws)) ws.send(text, { binary: false });
  };
  /**
   * Messages encoded once for every client, as WebSocket text frames back to back in one buffer
   * (exactly what `ws.send` writes without compression), written to each browser's socket in one
   * write: one syscall per browser per flush instead of one per message, and no per-socket framing.
   */
  const broadcastAll = (msgs: Record<string, unknown>[]) => {
    if (clients.size === 0 || msgs.length === 0) return;
    const texts = msgs.map((m) => JSON.stringify(m));
    const sizes = texts.map((t) => Buffer.byteLength(t));
    const bytes = Buffer.allocUnsafe(sizes.reduce((a, n) => a + headerSize(n) + n, 0));
    const payloads: Buffer[] = [];
    let at = 0;
    texts.forEach((text, i) => {
      at = writeTextHeader(bytes, at, sizes[i]!);
      payloads.push(bytes.subarray(at, at + sizes[i]!));
      at += bytes.write(text, at);
    });
    for (const ws of clients) {
      if (!writable(ws)) continue;
      const socket = rawSocket(ws);
      if (socket) socket.write(bytes);
      else for (const p of payloads) ws.send(p, { binary: false });
    }
  };
  const broadcast = (msg: Record<string, unknown>) => broadcastAll([msg]);

  // Closed candles and signals go out in batches: all those produced in one turn of the event loop
  // (a boundary's burst of closes arrives in a few turns) become one `candles` and one `signals`
  // frame, encoded once and written once per client, flushed on setImmediate (after the turn's I/O),
  // or at once when a batch is full. Per-item frames cost one socket write per item per client.
  const candleBatchMax = o.batchMax ?? 1_000;
  const signalBatchMax = Math.max(1, Math.floor(candleBatchMax / 5));
  let candleBatch: Candle[] = [];
  let signalBatch: TradeSignalMessage[] = [];
  let flushScheduled = false;
  const takeCandles = (): Record<string, unknown>[] => {
    if (candleBatch.length === 0) return [];
    const candles = candleBatch;
    candleBatch = [];
    return [{ type: 'candles', candles }];
  };
  const takeSignals = (): Record<string, unknown>[] => {
    if (signalBatch.length === 0) return [];
    const signals = signalBatch;
    signalBatch = [];
    return [{ type: 'signals', signals }];
  };
  // Candles first, so a signal never reaches a browser before the candle it fired on.
  const flushNow = () => broadcastAll([...takeCandles(), ...takeSignals()]);
  const flushBatches = () => {
    flushScheduled = false;
    flushNow();
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
      if (candleBatch.push(candle) >= candleBatchMax) broadcastAll(takeCandles());
      else scheduleFlush();
    },
    queueTradeSignal: (signal: TradeSignalMessage) => {
      if (clients.size === 0) return;
      if (signalBatch.push(signal) >= signalBatchMax) flushNow();
      else scheduleFlush();
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

/** RFC 6455 header of an unmasked, final text frame of `n` bytes: 2, 4 or 10 bytes. */
const headerSize = (n: number) => (n < 126 ? 2 : n < 65536 ? 4 : 10);

function writeTextHeader(out: Buffer, at: number, n: number): number {
  out[at++] = 0x81; // FIN, opcode 1 (text)
  if (n < 126) out[at++] = n;
  else if (n < 65536) {
    out[at++] = 126;
    at = out.writeUInt16BE(n, at);
  } else {
    out[at++] = 127;
    at = out.writeBigUInt64BE(BigInt(n), at);
  }
  return at;
}

/**
 * The TCP socket under a browser's `ws` WebSocket (ws keeps it as `_socket`), when frames written
 * to it directly are what ws itself would write: no extension negotiated (permessage-deflate would
 * compress them). ws writes each frame of its own in one synchronous go, so frames never interleave.
 */
function rawSocket(ws: WebSocket): Socket | undefined {
  if (ws.extensions !== '') return undefined;
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  return socket && socket.writable ? socket : undefined;
}

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
