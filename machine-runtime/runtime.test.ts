import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { ConfigError } from '../common/config';
import { createBinanceReplay, type BinanceReplay } from '../dev/binance-replay/server';
import { startMachineRuntime, type MachineRuntime } from './app';
import { loadConfig } from './config';
import type { Firing } from './engine';
import { createApiAnnotator } from './gemini';
import { createMetrics } from './metrics';
import { TradeSignalSink } from './trade-signals';
import { readCsv } from './test-support/data';
import { recordedDataDir as dataDir, describeWithData } from '../test/kit/data';
import { until } from '../test/kit/wait';
import { MemoryUserStore } from './test-support/memory-store';

const log = pino({ level: process.env.TEST_LOG ?? 'silent' });
const secret = 'test-secret-that-is-at-least-32-characters!';
const userId = randomUUID();

const mint = (opts: { sub?: string; key?: string; expiresIn?: string } = {}) =>
  new SignJWT({ role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.sub ?? userId)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(opts.key ?? secret));
/** What the worker sends on /control/* and for /health details (common/credentials.ts). */
const mintControl = (opts: { sub?: string } = {}) =>
  new SignJWT({ purpose: 'control' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.sub ?? userId)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(new TextEncoder().encode(secret));

/** Opens a socket and resolves with it, or with the HTTP status the upgrade was refused with. */
function connect(url: string, opts: { protocols?: string[]; headers?: Record<string, string> }) {
  return new Promise<{ ws?: WebSocket; status?: number; messages: Record<string, unknown>[] }>((resolve) => {
    const messages: Record<string, unknown>[] = [];
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers });
    ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.on('open', () => resolve({ ws, messages }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode, messages }));
    ws.on('error', () => resolve({ status: -1, messages }));
  });
}

describeWithData('machine runtime (replay + in-memory store)', () => {
  let replay: BinanceReplay;
  let runtime: MachineRuntime;
  let store: MemoryUserStore;
  let base: string;

  beforeAll(async () => {
    const btc = readCsv('BTCUSDT', '5m');
    replay = await createBinanceReplay({
      dataDir,
      speed: 30_000,
      startTime: btc[400]!.openTime,
      symbols: ['BTCUSDT', 'ETHUSDT'],
    });
    store = new MemoryUserStore(userId);
    store.addTrader('cross up', {
      symbols: ['BTCUSDT'],
      interval: '5m',
      fireOn: 'every',
      filter: { all: [{ left: { indicator: 'price' }, op: 'crossesAbove', right: { indicator: 'sma', period: 20 } }] },
    });
    runtime = await startMachineRuntime({
      config: {
        userId,
        userToken: await mint(),
        binanceWsUrl: replay.wsUrl,
        binanceRestUrl: replay.restUrl,
        tokenVerifySecret: secret,
        controlToken: 'control-token-that-is-at-least-32-chars',
        traderPollSeconds: 3600,
      },
      store,
      log,
      clock: () => replay.clock(),
      options: {
        feed: { reconnectBaseMs: 20, reconnectMaxMs: 200, warmupCandles: 100, restRetryBaseMs: 20 },
        storeRetryBaseMs: 20,
        storeRetryMaxMs: 100,
        metricsIntervalMs: 200,
      },
    });
    await runtime.app.listen({ port: 0, host: '127.0.0.1' });
    base = `127.0.0.1:${(runtime.app.server.address() as AddressInfo).port}`;
    await runtime.start();
  });

  afterAll(async () => {
    await runtime.stop();
    await replay.close();
  });
  /** /health with its details (a control token); without one it says only `{ ok }`. */
  const health = async () =>
    fetch(`http://${base}/health`, { headers: { authorization: `Bearer ${await mintControl()}` } });

  test('health is 200 once the feed is connected, traders loaded and evaluations recent; metrics are exposed', async () => {
    await until('healthy', async () => (await fetch(`http://${base}/health`)).status === 200, {
      timeoutMs: 10_000,
      everyMs: 25,
    });
    expect(await (await fetch(`http://${base}/health`)).json()).toEqual({ ok: true });
    const body = (await (await health()).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ ok: true, reasons: [], traders: 1, streams: 1 });
    const metrics = await (await fetch(`http://${base}/metrics`)).text();
    for (const name of [
      'runtime_feed_messages_total',
      'runtime_candles_closed_total',
      'runtime_signals_total',
      'runtime_ws_clients',
      'runtime_feed_lag_seconds',
    ]) {
      expect(metrics).toContain(name);
    }
  });

  test('a browser-style client (token as subprotocol) gets hello, metrics and live signals; signals are stored', async () => {
    const { ws, messages, status } = await connect(`ws://${base}/ws`, { protocols: ['bearer', await mint()] });
    expect(status).toBeUndefined();
    expect(ws!.protocol).toBe('bearer');
    await until('a signal', () => messages.some((m) => m.type === 'signals'), { timeoutMs: 10_000, everyMs: 25 });
    expect(messages[0]).toMatchObject({ type: 'hello', userId });
    await until(
      'metrics and candles',
      () => ['metrics', 'candles', 'state'].every((t) => messages.some((m) => m.type === t)),
      { timeoutMs: 10_000, everyMs: 25 },
    );
    // Candles and signals come batched, never one frame per item, and never an empty batch.
    type Item = { symbol: string; interval: string; openTime: number; candleOpenAt: string };
    const batches = messages.filter((m) => m.type === 'candles' || m.type === 'signals');
    expect(messages.some((m) => m.type === 'candle' || m.type === 'signal')).toBe(false);
    for (const b of batches) expect(((b.candles ?? b.signals) as Item[]).length).toBeGreaterThan(0);
    const signalsAt = messages.findIndex((m) => m.type === 'signals');
    const signal = (messages[signalsAt]!.signals as Item[])[0]!;
    expect(signal.symbol).toBe('BTCUSDT');
    // The candle a signal fired on reached the browser no later than the signal.
    const candlesBefore = messages
      .slice(0, signalsAt)
      .flatMap((m) => (m.type === 'candles' ? (m.candles as Item[]) : []));
    expect(candlesBefore.some((c) => new Date(c.openTime).toISOString() === signal.candleOpenAt)).toBe(true);
    await until('stored', () => store.signals.some((s) => s.candleOpenAt.toISOString() === signal.candleOpenAt), {
      timeoutMs: 10_000,
      everyMs: 25,
    });
    const keys = store.signals.map((s) => `${s.traderId}|${s.candleOpenAt.getTime()}`);
    expect(new Set(keys).size).toBe(keys.length);
    ws!.close();
  });

  test('a bad token is refused: wrong key, another user, expired, none', async () => {
    const bad = [
      await mint({ key: 'another-secret-that-is-at-least-32-characters' }),
      await mint({ sub: randomUUID() }),
      await mint({ expiresIn: '-1m' }),
    ];
    for (const token of bad) {
      expect((await connect(`ws://${base}/ws`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
      expect((await connect(`ws://${base}/ws`, { protocols: ['bearer', token] })).status).toBe(401);
    }
    expect((await connect(`ws://${base}/ws`, {})).status).toBe(401);
    const ok = await connect(`ws://${base}/ws`, { headers: { authorization: `Bearer ${await mint()}` } });
    expect(ok.ws).toBeDefined();
    ok.ws!.close();
  });

  test('an unreachable store: still serving, unhealthy with the reason, signals queued then delivered', async () => {
    store.failing = true;
    await until('queued signals', () => runtime.sink.queued > 0, { timeoutMs: 10_000, everyMs: 25 });
    const res = await health();
    expect(res.status).toBe(503);
    const body = (await res.json()) as { reasons: string[] };
    expect(body.reasons.join(' ')).toContain('store unreachable');
    store.failing = false;
    await until('queue drained', () => runtime.sink.queued === 0, { timeoutMs: 10_000, everyMs: 25 });
    await until('healthy again', async () => (await fetch(`http://${base}/health`)).status === 200, {
      timeoutMs: 10_000,
      everyMs: 25,
    });
  });

  test('control endpoints: reload traders (live subscribe) and renew credentials, both authenticated', async () => {
    expect((await fetch(`http://${base}/control/reload`, { method: 'POST' })).status).toBe(401);
    store.addTrader('eth rsi', {
      symbols: ['ETHUSDT'],
      interval: '5m',
      filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] },
    });
    const reload = await fetch(`http://${base}/control/reload`, {
      method: 'POST',
      headers: { authorization: 'Bearer control-token-that-is-at-least-32-chars' },
    });
    expect(reload.status).toBe(200);
    expect(await reload.json()).toMatchObject({ ok: true, traders: 2 });
    expect(runtime.engine.streams().sort()).toEqual(['BTCUSDT|5m', 'ETHUSDT|5m']);
    await until('ETH warmed up', () => runtime.feed.status().warmingUp === 0 && runtime.feed.status().streams === 2, {
      timeoutMs: 10_000,
      everyMs: 25,
    });

    const renewed = await mint({ expiresIn: '2h' });
    const post = (token: string, auth: string) =>
      fetch(`http://${base}/control/credentials`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      });
    expect((await post(renewed, await mint({ sub: randomUUID() }))).status).toBe(401);
    expect((await post(renewed, renewed)).status).toBe(401); // a user token is no control token
    expect((await post(renewed, await mintControl({ sub: randomUUID() }))).status).toBe(401);
    expect((await post(await mint({ sub: randomUUID() }), await mintControl())).status).toBe(400);
    const ok = await post(renewed, await mintControl());
    expect(ok.status).toBe(200);
    expect(runtime.getAccessToken()).toBe(renewed);
  });
});

test('the AI note service unreachable: the signal is stored without a note, promptly', async () => {
  const store = new MemoryUserStore();
  const sink = new TradeSignalSink({
    store,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    broadcast: () => undefined,
    // Port 9 (discard) on loopback refuses at once: no network is needed or used.
    annotate: createApiAnnotator({
      apiUrl: 'http://127.0.0.1:9',
      userId: randomUUID(),
      machineKey: 'k'.repeat(43),
      timeoutMs: 1_000,
    }),
    annotateTimeoutMs: 1_500,
  });
  const firing: Firing = {
    trader: { id: randomUUID(), name: 't' },
    candle: {
      symbol: 'BTCUSDT',
      interval: '5m',
      openTime: 0,
      closeTime: 299_999,
      open: 1,
      high: 2,
      low: 1,
      close: 2,
      volume: 3,
    },
    values: { 'rsi:14': 71 },
  };
  const started = Date.now();
  sink.submit(firing);
  await until('stored', () => store.signals.length === 1, { timeoutMs: 5_000, everyMs: 25 });
  expect(Date.now() - started).toBeLessThan(3_000);
  expect(store.signals[0]!.payload.aiNote).toBeUndefined();
  expect(String(store.signals[0]!.payload.aiNoteError)).not.toBe('');
  expect(store.signals[0]!.payload.values).toEqual({ 'rsi:14': 71 });
});

test('config: a bad or missing variable is named', () => {
  const good = {
    USER_ID: randomUUID(),
    USER_TOKEN: 'a.b.c',
    TOKEN_VERIFY_SECRET: secret,
    MACHINE_API_URL: 'http://127.0.0.1:3000',
  };
  expect(loadConfig(good)).toMatchObject({ PORT: 3000, BINANCE_WS_URL: 'wss://stream.binance.com:9443' });
  const fails = (env: Record<string, string | undefined>, variable: string) => {
    try {
      loadConfig(env);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.variable)).toContain(variable);
    }
  };
  fails({ ...good, USER_ID: 'nope' }, 'USER_ID');
  fails({ ...good, USER_TOKEN: undefined }, 'USER_TOKEN');
  fails({ ...good, TOKEN_VERIFY_SECRET: undefined }, 'TOKEN_VERIFY_SECRET');
  fails({ ...good, MACHINE_API_URL: undefined }, 'MACHINE_API_URL');
  // A database URL is not a store a machine may use: it is not even a variable the runtime reads.
  fails({ ...good, MACHINE_API_URL: undefined, DATABASE_URL: 'postgres://owner:pw@127.0.0.1/db' }, 'MACHINE_API_URL');
  fails({ ...good, BINANCE_WS_URL: 'http://x' }, 'BINANCE_WS_URL');
});
