import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { createCloudWebSocketClient } from './compat';
import { createCloudStreamClient, type CloudStreamClient, type ConnectionHealth, type StopReason } from './stream';
import type { CandleMessage, HelloMessage, MetricsMessage, SignalMessage } from './schemas';

jest.setTimeout(20_000);

const FAST = { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.5 };
const hello = {
  type: 'hello',
  userId: 'u1',
  serverTime: new Date().toISOString(),
  traders: 2,
  streams: ['btcusdt@kline_1m'],
};
const metricsFrame = {
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
async function streamServer() {
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

async function until(what: string, predicate: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stream client against a local ws server', () => {
  let server: Awaited<ReturnType<typeof streamServer>>;
  let client: CloudStreamClient | undefined;
  beforeEach(async () => {
    server = await streamServer();
  });
  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await server.close();
  });

  const make = (o: { token?: () => string | null; probe?: () => Promise<'ok' | 'no_machine' | 'unauthorized'> } = {}) =>
    (client = createCloudStreamClient({
      url: server.url,
      getAccessToken: o.token ?? (() => 'token-1'),
      WebSocket,
      backoff: FAST,
      probe: o.probe,
    }));

  test('connects with the bearer subprotocol, types messages, measures RTT from hello, counts frames', async () => {
    const c = make();
    const hellos: HelloMessage[] = [];
    const metrics: MetricsMessage[] = [];
    const raw: string[] = [];
    const states: ConnectionHealth['state'][] = [];
    c.on('hello', (m) => hellos.push(m));
    c.on('metrics', (m) => metrics.push(m));
    c.on('message', (text) => raw.push(text));
    c.on('connection', (h) => states.push(h.state));
    c.connect();
    await until('hello', () => hellos.length === 1);
    expect(server.tokens).toEqual(['token-1']);
    expect(hellos[0]).toMatchObject({ traders: 2, streams: ['btcusdt@kline_1m'] });

    server.last().send(JSON.stringify(metricsFrame));
    server.last().send('not json');
    server.last().send(JSON.stringify({ type: 'future-message', x: 1 }));
    await until('frames', () => raw.length === 4);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]!.heapUsedBytes).toBe(1234);

    expect(c.send({ ping: 1 })).toBe(true);
    expect(c.send('text')).toBe(true);
    await until('server received', () => server.received.length === 2);
    expect(server.received).toEqual(['{"ping":1}', 'text']);

    const h = c.getConnectionHealth();
    expect(h).toMatchObject({
      state: 'open',
      isHealthy: true,
      roundTripSource: 'hello',
      stopReason: null,
      metrics: {
        connectionAttempts: 1,
        successfulConnections: 1,
        failedConnections: 0,
        messagesSent: 2,
        messagesReceived: 4,
        reconnections: 0,
      },
    });
    expect(h.roundTripMs).toBeGreaterThanOrEqual(0);
    expect(h.lastMessageAgeMs).toBeLessThan(1_000);
    expect(states.slice(0, 2)).toEqual(['connecting', 'open']);

    c.disconnect();
    expect(c.getConnectionHealth()).toMatchObject({ state: 'closed', stopReason: 'disconnected', isHealthy: false });
    expect(c.send('late')).toBe(false);
    await sleep(150);
    expect(c.getConnectionHealth().metrics.connectionAttempts).toBe(1); // no reconnect after disconnect()
  });

  test("batched `candles` / `signals` frames: on('candle') and on('signal') still see one item at a time", async () => {
    const c = make();
    const candle = (symbol: string) => ({
      symbol,
      interval: '1m',
      openTime: 60_000,
      closeTime: 119_999,
      open: 1,
      high: 2,
      low: 0.5,
      close: 1.5,
      volume: 10,
    });
    const signal = {
      traderId: 't1',
      traderName: 'rsi',
      symbol: 'ETHUSDT',
      interval: '1m',
      candleOpenAt: new Date(60_000).toISOString(),
      firedAt: new Date().toISOString(),
      payload: { close: 1.5 },
    };
    const batches: string[] = [];
    const candles: CandleMessage[] = [];
    const signals: SignalMessage[] = [];
    c.on('candles', (m) => batches.push(`candles:${m.candles.length}`));
    c.on('signals', (m) => batches.push(`signals:${m.signals.length}`));
    c.on('candle', (m) => candles.push(m));
    c.on('signal', (m) => signals.push(m));
    c.connect();
    await until('open', () => c.state === 'open');
    server.last().send(JSON.stringify({ type: 'candles', candles: [candle('BTCUSDT'), candle('ETHUSDT')] }));
    server.last().send(JSON.stringify({ type: 'signals', signals: [signal] }));
    // A runtime from before batching: one frame per item.
    server.last().send(JSON.stringify({ type: 'candle', candle: candle('SOLUSDT') }));
    await until('items', () => candles.length === 3 && signals.length === 1);
    expect(batches).toEqual(['candles:2', 'signals:1']);
    expect(candles.map((m) => [m.type, m.candle.symbol])).toEqual([
      ['candle', 'BTCUSDT'],
      ['candle', 'ETHUSDT'],
      ['candle', 'SOLUSDT'],
    ]);
    expect(signals[0]).toEqual({ type: 'signal', signal });
    expect(c.getConnectionHealth().metrics.messagesReceived).toBe(4); // frames, not items
  });

  test('reconnects with backoff after drops and refusals, with a fresh token each time', async () => {
    let n = 0;
    const c = make({ token: () => `token-${++n}` });
    // Each scheduled delay: exponential in the attempt, capped, and jittered down by at most half.
    const delays: { attempt: number; delay: number }[] = [];
    c.on('connection', (h) => {
      if (h.state === 'reconnecting' && h.nextReconnectAt)
        delays.push({ attempt: h.reconnectAttempt, delay: h.nextReconnectAt - Date.now() });
    });
    c.connect();
    await until('open', () => c.state === 'open');

    server.last().terminate(); // dropped without a close frame (1006)
    await until('reconnected', () => c.getConnectionHealth().metrics.successfulConnections === 2);
    server.last().close(4502, 'unreachable'); // 4502: the machine is unreachable, worth retrying
    await until('reconnected again', () => c.getConnectionHealth().metrics.successfulConnections === 3);

    // Refused upgrades (503) count as failed attempts and back off; the server comes back, so does the client.
    server.set('refuse503');
    server.last().terminate();
    await until('three refusals', () => c.getConnectionHealth().metrics.failedConnections >= 3);
    const during = c.getConnectionHealth();
    expect(during.reconnectAttempt).toBeGreaterThanOrEqual(3);
    expect(['connecting', 'reconnecting']).toContain(during.state);
    server.set('accept');
    await until('back', () => c.state === 'open', 5_000);
    await until('hello after coming back', () => c.getConnectionHealth().reconnectAttempt === 0);

    const h = c.getConnectionHealth();
    expect(h.metrics.successfulConnections).toBe(4);
    expect(h.metrics.connectionAttempts).toBe(h.metrics.successfulConnections + h.metrics.failedConnections);
    expect(h.metrics.reconnections).toBe(h.metrics.connectionAttempts - 1);
    expect(h.metrics.messagesReceived).toBe(4); // one hello per connection
    expect(server.tokens).toEqual(server.tokens.map((_, i) => `token-${i + 1}`));
    expect(h.lastClose?.code).toBe(1006);
    expect(delays.length).toBeGreaterThanOrEqual(5);
    for (const { attempt, delay } of delays) {
      const base = Math.min(FAST.maxMs, FAST.initialMs * FAST.factor ** (attempt - 1));
      expect(delay).toBeLessThanOrEqual(base);
      expect(delay).toBeGreaterThanOrEqual(base * (1 - FAST.jitter) - 5);
    }
    expect(Math.max(...delays.map((d) => d.attempt))).toBeGreaterThanOrEqual(3);
  });

  test.each<[string, (s: Awaited<ReturnType<typeof streamServer>>) => void, StopReason]>([
    ['4404 (no running machine)', (s) => s.last().close(4404, 'you have no running machine'), 'no_machine'],
    ['1001 (the machine stops)', (s) => s.last().close(1001, 'runtime stopping'), 'machine_stopped'],
    ['4503 (the machine went away)', (s) => s.last().close(4503, 'your machine went away'), 'machine_stopped'],
    ['4401 (token refused)', (s) => s.last().close(4401, 'token expired'), 'unauthorized'],
  ])('stops reconnecting on %s', async (_name, closeIt, reason) => {
    const c = make();
    c.connect();
    await until('open', () => c.state === 'open');
    closeIt(server);
    await until('closed', () => c.state === 'closed');
    await sleep(150);
    expect(c.getConnectionHealth()).toMatchObject({
      state: 'closed',
      stopReason: reason,
      nextReconnectAt: null,
      metrics: { connectionAttempts: 1, reconnections: 0 },
    });
  });

  test('stops on a token refused before the upgrade (401), and without a token', async () => {
    server.set('refuse401');
    const c = make();
    c.connect();
    await until('closed', () => c.state === 'closed');
    await sleep(150);
    expect(c.getConnectionHealth()).toMatchObject({
      stopReason: 'unauthorized',
      metrics: { connectionAttempts: 1, failedConnections: 1, successfulConnections: 0 },
    });

    const noToken = createCloudStreamClient({ url: server.url, getAccessToken: () => null, WebSocket });
    noToken.connect();
    await until('closed', () => noToken.state === 'closed');
    expect(noToken.getConnectionHealth()).toMatchObject({
      stopReason: 'unauthorized',
      metrics: { connectionAttempts: 0 },
    });
  });

  test('a handshake that fails without a status asks the probe (what browsers need)', async () => {
    server.set('hangup');
    let probed = 0;
    const c = make({ probe: async () => (++probed < 2 ? 'ok' : 'unauthorized') });
    c.connect();
    await until('closed', () => c.state === 'closed');
    expect(probed).toBe(2); // the first "ok" retried, the second verdict stopped it
    expect(c.getConnectionHealth()).toMatchObject({ stopReason: 'unauthorized', metrics: { failedConnections: 2 } });
  });

  test('gives up after maxReconnectAttempts consecutive failures', async () => {
    server.set('refuse503');
    const c = (client = createCloudStreamClient({
      url: server.url,
      getAccessToken: () => 't',
      WebSocket,
      backoff: FAST,
      maxReconnectAttempts: 2,
    }));
    c.connect();
    await until('closed', () => c.state === 'closed');
    expect(c.getConnectionHealth()).toMatchObject({ stopReason: 'max_attempts', metrics: { connectionAttempts: 3 } });
  });

  test('the seed-shaped compat client: connect(machineId, websocketUrl, userId) resolves on open', async () => {
    const legacy = createCloudWebSocketClient({ getAccessToken: () => 'tok', WebSocket, backoff: FAST });
    const hellos: unknown[] = [];
    legacy.on('hello', (m) => hellos.push(m));
    await legacy.connect('ignored-machine-id', server.url, 'ignored-user-id');
    await until('hello', () => hellos.length === 1);
    expect(legacy.getConnectionHealth()).toMatchObject({ state: 'open', metrics: { successfulConnections: 1 } });
    legacy.disconnect();

    server.set('refuse401');
    await expect(legacy.connect('m', server.url, 'u')).rejects.toThrow(/unauthorized/);
    legacy.disconnect();
  });
});
