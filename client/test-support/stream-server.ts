import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { until } from '../../test/kit/wait';
import { createCloudStreamClient, type CloudStreamClient } from '../stream';

/** The stream client tests' fixture: a local `ws` server standing in for the API's stream route, and its frames. */

export const FAST = { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.5 };
const hello = {
  type: 'hello',
  userId: 'u1',
  serverTime: new Date().toISOString(),
  traders: 2,
  streams: ['btcusdt@kline_1m'],
};
export const metricsFrame = {
  type: 'metrics',
  at: new Date().toISOString(),
  feedMessages: 10,
  malformed: 0,
  reconnects: 0,
  candlesProcessed: 3,
  evaluations: 6,
  signalsFired: 1,
  signalQueue: 0,
  heapUsedBytes: 1234,
};

type Behaviour = 'accept' | 'refuse401' | 'refuse503' | 'hangup';

/**
 * A stand-in for the API's stream route, as the client sees it: the token in the `bearer` subprotocol,
 * a refused upgrade, a dropped connection, the gateway's close codes.
 */
export async function streamServer() {
  let behaviour: Behaviour = 'accept';
  const tokens: string[] = [];
  const received: string[] = [];
  const sockets: WebSocket[] = [];
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    handleProtocols: (protocols) => (protocols.has('bearer') ? 'bearer' : false),
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const offered = String(info.req.headers['sec-websocket-protocol'] ?? '').split(/,\s*/);
      tokens.push(offered[1] ?? '');
      if (behaviour === 'refuse401') return done(false, 401);
      if (behaviour === 'refuse503') return done(false, 503);
      if (behaviour === 'hangup') return info.req.socket.destroy();
      done(offered[0] === 'bearer' && !!offered[1]);
    },
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data) => received.push(String(data)));
    ws.send(JSON.stringify(hello));
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/v1/machines/me/stream`,
    tokens,
    received,
    sockets,
    set: (b: Behaviour) => (behaviour = b),
    last: () => sockets.at(-1)!,
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => r());
      }),
  };
}

export type StreamServer = Awaited<ReturnType<typeof streamServer>>;

/** The kit's `until` at a local server's pace: every 10 ms, for at most 5 s. */
export const soon = (what: string, predicate: () => boolean, timeoutMs = 5_000) =>
  until(what, predicate, { timeoutMs, everyMs: 10 });

/**
 * Per test: a fresh server (beforeEach), and `make()` for a stream client pointed at it with fast
 * backoff, disconnected and closed afterwards (afterEach).
 */
export function useStreamFixture() {
  let current: StreamServer | undefined;
  let client: CloudStreamClient | undefined;
  beforeEach(async () => {
    current = await streamServer();
  });
  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await current?.close();
  });
  return {
    get server(): StreamServer {
      if (!current) throw new Error('the stream fixture is used outside a test');
      return current;
    },
    /** Hands a client made by the test itself to the fixture, to be disconnected after the test. */
    adopt: (c: CloudStreamClient) => (client = c),
    make: (o: { token?: () => string | null; probe?: () => Promise<'ok' | 'no_machine' | 'unauthorized'> } = {}) =>
      (client = createCloudStreamClient({
        url: current!.url,
        getAccessToken: o.token ?? (() => 'token-1'),
        WebSocket,
        backoff: FAST,
        probe: o.probe,
      })),
  };
}
