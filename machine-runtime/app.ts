import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import type { UserStore } from '../store/types';
import { createTokenVerifier, unverifiedExpiry, type TokenVerifier } from './auth';
import { intervalMs, parseStreamKey, type Candle } from './candles';
import { registerControlRoutes, tokenGuard } from './control';
import { TraderEngine, type InvalidTrader } from './engine';
import { BinanceFeed, type FeedOptions } from './feed';
import { createApiAnnotator, type Annotator } from './gemini';
import { backoffMs, type Log } from './log';
import { createMetrics, type RuntimeMetrics } from './metrics';
import { SignalSink, type SignalMessage } from './signals';
import type { MachineBudget } from './trader-limits';

export interface RuntimeDeps {
  config: {
    userId: string;
    userToken: string;
    binanceWsUrl: string;
    binanceRestUrl: string;
    tokenVerifySecret?: string;
    supabaseUrl?: string;
    controlToken?: string;
    /** The control plane's machine-facing API (MACHINE_API_URL): AI notes are asked of it, signed with the machine key. */
    machineApiUrl?: string;
    aiNoteTimeoutMs?: number;
    traderPollSeconds?: number;
  };
  store: UserStore;
  log: Log;
  /** Market time in ms; defaults to Date.now (the replay's clock in tests). */
  clock?: () => number;
  /** Overrides the verifier built from the config (it then decides alone who may do what). */
  verifyToken?: TokenVerifier;
  /** Overrides the Gemini annotator built from `geminiApiKey`. */
  annotate?: Annotator;
  metrics?: RuntimeMetrics;
  options?: {
    feed?: Partial<
      Omit<FeedOptions, 'onClosed' | 'onInvalidSymbol' | 'log' | 'metrics' | 'clock' | 'wsUrl' | 'restUrl'>
    >;
    /** What all traders together may use (default: trader-schema.ts's per-machine bounds). */
    traderLimits?: Partial<MachineBudget>;
    candleCapacity?: number;
    signalQueueLimit?: number;
    storeRetryBaseMs?: number;
    storeRetryMaxMs?: number;
    /** A browser socket with more than this many bytes unsent is dropped. */
    wsMaxBufferedBytes?: number;
    /** Most candles in one `candles` frame (signals: a fifth of it); a fuller batch is sent at once. */
    wsBatchMax?: number;
    metricsIntervalMs?: number;
    /** How old the last evaluation may be before /health fails; default 2 × shortest interval + 60 s. */
    evaluationStaleMs?: number;
  };
}

export type Runtime = Awaited<ReturnType<typeof createRuntime>>;

/** A symbol Binance REST refused (-1121) is not asked for again for this long (a new listing may appear). */
const UNKNOWN_SYMBOL_RECHECK_MS = 3_600_000;

/** Builds the runtime (routes, feed, engine, sink) from its dependencies; `start()` sets it working. */
export async function createRuntime(deps: RuntimeDeps) {
  const { config, store, log } = deps;
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? createMetrics();
  const opts = deps.options ?? {};
  const verify =
    deps.verifyToken ??
    createTokenVerifier({ userId: config.userId, secret: config.tokenVerifySecret, supabaseUrl: config.supabaseUrl });
  const annotate =
    deps.annotate ??
    (config.machineApiUrl && config.tokenVerifySecret
      ? createApiAnnotator({
          apiUrl: config.machineApiUrl,
          userId: config.userId,
          machineKey: config.tokenVerifySecret,
          timeoutMs: config.aiNoteTimeoutMs,
        })
      : undefined);
  const maxBuffered = opts.wsMaxBufferedBytes ?? 1 << 20;
  const startedAt = Date.now();

  let accessToken = config.userToken;
  let tokenExpiresAt = unverifiedExpiry(accessToken);
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
  const candleBatchMax = opts.wsBatchMax ?? 1_000;
  const signalBatchMax = Math.max(1, Math.floor(candleBatchMax / 5));
  let candleBatch: Candle[] = [];
  let signalBatch: SignalMessage[] = [];
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
  const queueCandle = (candle: Candle) => {
    if (clients.size === 0) return;
    if (candleBatch.push(candle) >= candleBatchMax) flushCandles();
    else scheduleFlush();
  };
  const queueSignal = (signal: SignalMessage) => {
    if (clients.size === 0) return;
    // Candles first, so a signal never reaches a browser before the candle it fired on.
    if (signalBatch.push(signal) >= signalBatchMax) {
      flushCandles();
      flushSignals();
    } else scheduleFlush();
  };

  const sink = new SignalSink({
    store,
    log,
    metrics,
    annotate,
    annotateTimeoutMs: (config.aiNoteTimeoutMs ?? 4_000) + 500,
    queueLimit: opts.signalQueueLimit,
    retryBaseMs: opts.storeRetryBaseMs,
    retryMaxMs: opts.storeRetryMaxMs,
    broadcast: queueSignal,
  });
  const engine = new TraderEngine({
    candleCapacity: opts.candleCapacity,
    limits: opts.traderLimits,
    onFire: (f) => sink.submit(f),
    onCandle: (candle: Candle, evaluated) => {
      if (evaluated) queueCandle(candle);
    },
  });
  /** Symbols Binance REST refused (-1121), with why and when: their traders are refused at load. */
  const unknownSymbols = new Map<string, { reason: string; at: number }>();
  const feed = new BinanceFeed({
    ...opts.feed,
    wsUrl: config.binanceWsUrl,
    restUrl: config.binanceRestUrl,
    clock,
    log,
    metrics,
    onClosed: (candles, source) => {
      const before = engine.stats.evaluations;
      engine.onClosed(candles, source !== 'warmup');
      metrics.evaluations.inc(engine.stats.evaluations - before);
    },
    // Its traders are marked invalid at the next load, which starts at once and drops the stream.
    onInvalidSymbol: (symbol, reason) => {
      unknownSymbols.set(symbol, { reason, at: Date.now() });
      void reloadTraders();
    },
  });

  // Trader (re)loading: serialised; a failure keeps the old traders and retries with backoff.
  let tradersLoadedAt = 0;
  let tradersError: string | null = null;
  let invalidTraders: InvalidTrader[] = [];
  let reloading: Promise<void> | null = null;
  let reloadAgain = false;
  let reloadFailures = 0;
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];

  const loadOnce = async () => {
    try {
      const rows = await store.listTraders({ enabledOnly: true });
      for (const [symbol, u] of unknownSymbols)
        if (Date.now() - u.at > UNKNOWN_SYMBOL_RECHECK_MS) unknownSymbols.delete(symbol);
      const result = engine.setTraders(rows, {
        unknownSymbols: new Map([...unknownSymbols].map(([symbol, u]) => [symbol, u.reason])),
      });
      invalidTraders = result.invalid;
      if (result.invalid.length) log.warn({ invalid: result.invalid }, 'some traders were refused');
      feed.setStreams(engine.streams());
      metrics.traders.set(result.loaded);
      tradersLoadedAt = Date.now();
      tradersError = null;
      reloadFailures = 0;
      broadcast({ type: 'state', state: health() });
    } catch (err) {
      metrics.storeErrors.inc({ op: 'listTraders' });
      tradersError = err instanceof Error ? err.message : String(err);
      log.warn({ err }, 'loading traders failed; will retry');
      const retry = setTimeout(() => void reloadTraders(), backoffMs(reloadFailures++, 1_000, 30_000));
      retry.unref();
      timers.push(retry);
    }
  };
  const reloadTraders = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        await loadOnce();
      } while (reloadAgain && !stopped);
    })().finally(() => {
      reloading = null;
    });
    return reloading;
  };

  function health() {
    const reasons: string[] = [];
    const fs = feed.status();
    const streams = engine.streams();
    if (!tradersLoadedAt) reasons.push(`traders not loaded${tradersError ? `: ${tradersError}` : ''}`);
    else if (tradersError) reasons.push(`trader reload failing: ${tradersError}`);
    if (streams.length > 0) {
      if (!fs.connected) reasons.push(`feed disconnected (${fs.connectedShards}/${fs.shards} connections)`);
      if (fs.warmingUp > 0) reasons.push(`warming up ${fs.warmingUp} streams`);
      const shortest = Math.min(...streams.map((k) => intervalMs(parseStreamKey(k).interval)));
      const staleMs = opts.evaluationStaleMs ?? 2 * shortest + 60_000;
      const age = Date.now() - engine.stats.lastEvaluationAt;
      if (fs.warmingUp === 0 && age > staleMs) reasons.push(`no evaluation for ${Math.round(age / 1000)} s`);
    }
    if (sink.storeFailing) reasons.push(`store unreachable: ${sink.lastStoreError?.message ?? ''}`);
    if (tokenExpiresAt !== undefined && tokenExpiresAt < Date.now()) reasons.push('user token expired');
    return {
      ok: reasons.length === 0,
      reasons,
      idle: streams.length === 0,
      userId: config.userId,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      feed: fs,
      traders: engine.traderCount(),
      invalidTraders,
      streams: streams.length,
      lastEvaluationAt: engine.stats.lastEvaluationAt ? new Date(engine.stats.lastEvaluationAt).toISOString() : null,
      candlesProcessed: engine.stats.candles,
      signalsFired: engine.stats.firings,
      signalQueue: sink.queued,
      wsClients: clients.size,
      tokenExpiresAt: tokenExpiresAt ? new Date(tokenExpiresAt).toISOString() : null,
    };
  }

  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) log.error({ err, url: req.url }, 'request failed');
    void reply
      .code(status)
      .type('application/problem+json')
      .send({
        type: 'about:blank',
        title: status >= 500 ? 'Internal Server Error' : 'Bad Request',
        status,
        detail: status >= 500 ? 'internal error' : err.message,
      });
  });
  await app.register(websocket, {
    options: {
      maxPayload: 4 * 1024,
      // Browsers send the token as a subprotocol; we answer with `bearer`, never echo the token.
      handleProtocols: (protocols: Set<string>) => (protocols.has('bearer') ? 'bearer' : false),
    },
  });

  registerControlRoutes(app, {
    userId: config.userId,
    controlToken: config.controlToken,
    verify,
    log,
    health,
    reload: async () => {
      await reloadTraders();
      return { ok: tradersError === null, traders: engine.traderCount(), invalidTraders, error: tradersError };
    },
    installToken: (token, expiresAt) => {
      accessToken = token;
      tokenExpiresAt = expiresAt;
    },
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  // The API gateway's stream token (or the user's own access token); never a control token.
  app.get('/ws', { websocket: true, preValidation: tokenGuard({ verify }, 'stream') }, (socket) => {
    clients.add(socket);
    metrics.wsClients.set(clients.size);
    socket.on('close', () => {
      clients.delete(socket);
      metrics.wsClients.set(clients.size);
    });
    socket.on('error', () => socket.terminate());
    send(
      socket,
      JSON.stringify({
        type: 'hello',
        userId: config.userId,
        serverTime: new Date().toISOString(),
        traders: engine.streams().length,
        streams: engine.streams(),
      }),
    );
    send(socket, JSON.stringify({ type: 'state', state: health() }));
  });

  const metricsMessage = () => ({
    type: 'metrics',
    at: new Date().toISOString(),
    feedMessages: feed.status().messages,
    malformed: feed.status().malformed,
    reconnects: feed.status().reconnects,
    candlesProcessed: engine.stats.candles,
    evaluations: engine.stats.evaluations,
    signalsFired: engine.stats.firings,
    signalQueue: sink.queued,
    heapUsedBytes: process.memoryUsage().heapUsed,
  });

  return {
    app,
    engine,
    feed,
    sink,
    metrics,
    health,
    reloadTraders,
    /** The current user token, renewed through /control/credentials (the store reads it per call). */
    getAccessToken: () => accessToken,
    clientCount: () => clients.size,
    async start(): Promise<void> {
      await reloadTraders();
      const poll = setInterval(() => void reloadTraders(), (config.traderPollSeconds ?? 30) * 1000);
      const tick = setInterval(() => {
        if (clients.size === 0) return;
        broadcast(metricsMessage());
        broadcast({ type: 'state', state: health() });
      }, opts.metricsIntervalMs ?? 5_000);
      for (const t of [poll, tick]) {
        t.unref();
        timers.push(t);
      }
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await feed.stop();
      await sink.flush(2_000);
      sink.stop();
      flushBatches();
      for (const ws of clients) ws.close(1001, 'runtime stopping');
      await app.close();
    },
  };
}
