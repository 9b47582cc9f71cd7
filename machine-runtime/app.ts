import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import type { UserStore } from '../store/types';
import { createTokenVerifier, unverifiedExpiry, type TokenVerifier } from './auth';
import { createBrowserHub, registerBrowserRoute } from './browser-hub';
import type { Candle } from './candles';
import { CheckpointKeeper } from './checkpoint';
import { registerControlRoutes } from './control';
import { TraderEngine } from './engine';
import { BinanceFeed, type FeedOptions } from './feed';
import { createApiAnnotator, type Annotator } from './gemini';
import { createHealthCheck, metricsMessage } from './health';
import type { Log } from './log';
import { createMetrics, type MachineRuntimeMetrics } from './metrics';
import { TradeSignalSink } from './trade-signals';
import type { MachineBudget } from './trader-limits';
import { createTraderLoader } from './trader-loader';

export interface MachineRuntimeDeps {
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
    /** FLY_MACHINE_ID: a checkpoint of another machine is not resumed (checkpoint.ts). */
    machineId?: string;
    /** RUNTIME_CATCHUP_MAX in ms: how old a close missed while down may be and still fire (default 1 h). */
    catchUpMaxMs?: number;
  };
  store: UserStore;
  log: Log;
  /** Market time in ms; defaults to Date.now (the replay's clock in tests). */
  clock?: () => number;
  /** Overrides the verifier built from the config (it then decides alone who may do what). */
  verifyToken?: TokenVerifier;
  /** Overrides the Gemini annotator built from `geminiApiKey`. */
  annotate?: Annotator;
  metrics?: MachineRuntimeMetrics;
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
    /** Runtime checkpoint writes are at most this often (default 5 s). */
    checkpointDebounceMs?: number;
    /** How old the last evaluation may be before /health fails; default 2 × shortest interval + 60 s. */
    evaluationStaleMs?: number;
  };
}

export type MachineRuntime = Awaited<ReturnType<typeof startMachineRuntime>>;

/**
 * Builds the machine runtime from its dependencies: the feed (feed.ts) → the engine (engine.ts) →
 * the trade-signal sink (trade-signals.ts) → the browsers (browser-hub.ts), the traders loaded by
 * trader-loader.ts, and the routes (`/health` and `/control/*` in control.ts, `/metrics`, `/ws`).
 * `start()` sets it working.
 */
export async function startMachineRuntime(deps: MachineRuntimeDeps) {
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
  const startedAt = Date.now();

  let accessToken = config.userToken;
  let tokenExpiresAt = unverifiedExpiry(accessToken);
  const browsers = createBrowserHub({ metrics, maxBufferedBytes: opts.wsMaxBufferedBytes, batchMax: opts.wsBatchMax });

  const tradeSignals = new TradeSignalSink({
    store,
    log,
    metrics,
    annotate,
    annotateTimeoutMs: (config.aiNoteTimeoutMs ?? 4_000) + 500,
    queueLimit: opts.signalQueueLimit,
    retryBaseMs: opts.storeRetryBaseMs,
    retryMaxMs: opts.storeRetryMaxMs,
    broadcast: browsers.queueTradeSignal,
  });
  const engine = new TraderEngine({
    candleCapacity: opts.candleCapacity,
    limits: opts.traderLimits,
    onFire: (f) => tradeSignals.submit(f),
    onCandle: (candle: Candle, evaluated) => {
      if (evaluated) browsers.queueCandle(candle);
    },
  });
  const checkpoint = new CheckpointKeeper({
    store,
    log,
    metrics,
    machineId: config.machineId ?? null,
    clock,
    catchUpMaxMs: config.catchUpMaxMs ?? 3_600_000,
    unstoredFrom: (key) => tradeSignals.unstoredFrom(key),
    streams: () => engine.streams(),
    traders: () => engine.loadedTraders(),
    debounceMs: opts.checkpointDebounceMs,
  });
  const feed = new BinanceFeed({
    ...opts.feed,
    wsUrl: config.binanceWsUrl,
    restUrl: config.binanceRestUrl,
    clock,
    log,
    metrics,
    onClosed: (candles, source, key) => {
      const before = engine.stats.evaluations;
      const last = candles[candles.length - 1]!;
      if (source === 'warmup') {
        // History is evaluated silently; after a restart, the closes missed since the checkpoint fire.
        const { from, mayFire } = checkpoint.plan(key, candles);
        if (from > 0) engine.onClosed(from < candles.length ? candles.slice(0, from) : candles, false, undefined, key);
        if (from < candles.length) engine.onClosed(candles.slice(from), true, mayFire, key);
      } else engine.onClosed(candles, true, undefined, key);
      checkpoint.evaluatedUpTo(key, last.openTime);
      metrics.evaluations.inc(engine.stats.evaluations - before);
    },
    // Its traders are marked invalid at the next load, which starts at once and drops the stream.
    onInvalidSymbol: (symbol, reason) => traders.refuseSymbol(symbol, reason),
  });
  const traders = createTraderLoader({
    store,
    engine,
    feed,
    log,
    metrics,
    onLoaded: () => browsers.broadcast({ type: 'state', state: health() }),
  });
  const health = createHealthCheck({
    userId: config.userId,
    startedAt,
    feed,
    engine,
    sink: tradeSignals,
    traders,
    clientCount: browsers.clientCount,
    tokenExpiresAt: () => tokenExpiresAt,
    evaluationStaleMs: opts.evaluationStaleMs,
  });
  const timers: NodeJS.Timeout[] = [];

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
      await traders.reload();
      return {
        ok: traders.error === null,
        traders: engine.traderCount(),
        invalidTraders: traders.invalid,
        error: traders.error,
      };
    },
    installToken: (token, expiresAt) => {
      accessToken = token;
      tokenExpiresAt = expiresAt;
    },
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  registerBrowserRoute(app, { hub: browsers, verify, userId: config.userId, streams: () => engine.streams(), health });

  return {
    app,
    engine,
    feed,
    sink: tradeSignals,
    metrics,
    health,
    reloadTraders: traders.reload,
    /** The current user token, renewed through /control/credentials (the store reads it per call). */
    getAccessToken: () => accessToken,
    clientCount: browsers.clientCount,
    checkpoint,
    async start(): Promise<void> {
      // Before any stream warms up: its warm-up is where missed closes are caught up.
      await checkpoint.restore();
      await traders.reload();
      const poll = setInterval(() => void traders.reload(), (config.traderPollSeconds ?? 30) * 1000);
      const tick = setInterval(() => {
        if (browsers.clientCount() === 0) return;
        browsers.broadcast(metricsMessage({ feed, engine, sink: tradeSignals }));
        browsers.broadcast({ type: 'state', state: health() });
      }, opts.metricsIntervalMs ?? 5_000);
      for (const t of [poll, tick]) {
        t.unref();
        timers.push(t);
      }
    },
    async stop(): Promise<void> {
      traders.stop();
      for (const t of timers) clearTimeout(t);
      await feed.stop();
      await tradeSignals.flush(2_000);
      // After the sink: the last signals are stored, so the watermark can move past them.
      await checkpoint.flush(2_000);
      checkpoint.stop();
      tradeSignals.stop();
      browsers.flush();
      browsers.closeAll(1001, 'runtime stopping');
      await app.close();
    },
  };
}
