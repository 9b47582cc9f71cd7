import { randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { FlyClient } from '../fly/client';
import type { PostgresStore } from '../store/postgres';
import type { ServiceStore } from '../store/types';
import { durationMs, lifecycleSettings, TASK_QUEUE } from '../workflows/contract';
import { lifecycleSettingsFrom, type ApiConfig } from './config';
import { createMachineService } from './machines';
import { createApiMetrics, type ApiMetrics } from './metrics';
import { installErrorShape } from './error-shape';
import { createRouteGuards } from './route-guards';
import { callerStoreFor } from './user-store';
import { registerDashboardRoutes } from './dashboard/routes';
import { registerDevSignInRoutes } from './dev-sign-in';
import { createStreamLeases, sharedRateLimitStore } from './shared-limits';
import { createStreamGateway } from './stream';
import { createGeminiNoteWriter, type AiNoteWriter } from '../common/ai-note';
import { registerMachineApi } from './machine-api';
import { registerMachineRoutes } from './machine-routes';
import { registerOpsRoutes } from './ops-routes';
import { registerWebhookRoutes } from './webhook-routes';
import { registerOptionsRoute } from './options';
import { registerTimelineRoutes } from './timeline';
import { uptimePolicyFrom } from '../common/uptime-config';
import { createMachineReloader, registerTraderRoutes } from './traders';
import { registerPreviewRoute } from './traders-preview';
import { registerSignalRoutes } from './signals';
import { registerMarketRoutes } from './market';
import { createMachineWatcher, registerMachineEventsRoute } from './machine-events';
import { KlinesClient } from '../machine-runtime/rest';
import { createMetrics as createRuntimeMetrics } from '../machine-runtime/metrics';

export interface AppDeps {
  config: ApiConfig;
  /** One client for the life of the process (never one per request). */
  temporal: Client;
  store: ServiceStore;
  fly: FlyClient;
  logger?: Logger;
  /** Default `machines` (TASK_QUEUE); tests use a unique one. */
  taskQueue?: string;
  metrics?: ApiMetrics;
  /** Overrides the Gemini note writer built from GEMINI_API_KEY (tests). */
  writeNote?: AiNoteWriter;
}

const JSON_BODY_LIMIT = 16 * 1024;

/** Builds the API (routes, auth, errors, metrics) from its dependencies; `server.ts` owns the process. */
export async function createApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, temporal, store } = deps;
  const metrics = deps.metrics ?? createApiMetrics();
  const logger = deps.logger ?? pino({ level: 'silent' });
  const settings = lifecycleSettingsFrom(config);
  const machines = createMachineService({
    temporal,
    store,
    taskQueue: deps.taskQueue ?? TASK_QUEUE,
    settings,
    provisionCooldownMs: durationMs(config.API_PROVISION_COOLDOWN),
  });
  const gracePeriodMs = durationMs(lifecycleSettings(settings).paymentGracePeriod)!;

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // A caller's request id is kept (so logs join up across services), else a fresh one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    bodyLimit: JSON_BODY_LIMIT,
  });
  const gateway = createStreamGateway({
    machines,
    fly: deps.fly,
    jwtSecret: config.SUPABASE_JWT_SECRET,
    metrics,
    log: app.log,
    maxBufferedBytes: config.API_STREAM_MAX_BUFFERED_BYTES,
    maxPerUser: config.API_STREAM_MAX_PER_USER,
    leases: createStreamLeases({
      store,
      maxPerUser: config.API_STREAM_MAX_PER_USER,
      ttlMs: durationMs(config.API_STREAM_LEASE_TTL)!,
      log: app.log,
    }),
    maxMessagesPerSecond: config.API_STREAM_MAX_MESSAGES_PER_SECOND,
    messageBurst: config.API_STREAM_MESSAGE_BURST,
  });

  // --- one error shape (error-shape.ts) --------------------------------------------------------------
  installErrorShape(app);

  // --- metrics and request ids ---------------------------------------------------------------------
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const labels = {
      method: req.method,
      route: req.routeOptions.url ?? '(unmatched)',
      status: String(reply.statusCode),
    };
    metrics.requests.inc(labels);
    metrics.latency.observe(labels, reply.elapsedTime / 1000);
  });

  // Counters in Postgres, shared by every replica; a count that fails lets the request through (fail open).
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    store: sharedRateLimitStore({ store, log: app.log }),
    skipOnError: true,
  });
  await app.register(websocket, {
    options: {
      // A ceiling: the gateway itself closes a browser frame over 4 KB with 1009 and a reason
      // (stream-limits.ts); past 64 KB `ws` closes 1009 on the frame's header, before reading it.
      maxPayload: 64 * 1024,
      // Browsers put the token in the subprotocol list; we answer `bearer`, never echo the token.
      handleProtocols: (protocols: Set<string>) => (protocols.has('bearer') ? 'bearer' : false),
    },
    preClose: () => gateway.closeAll(),
  });

  // --- auth and the per-user budgets (route-guards.ts) ------------------------------------------------
  const guards = createRouteGuards(app, config);
  const { userOf, userRoute, pageRoute } = guards;
  // Every open page of a user shares one status poller in this process (GET /v1/machines/me/events).
  const watcher = createMachineWatcher({ status: (userId) => machines.status(userId) });
  app.addHook('onClose', async () => watcher.close());

  // --- the machine-facing API (a machine, signed with its per-user key; never a database credential) ---
  await registerMachineApi(app, {
    jwtSecret: config.SUPABASE_JWT_SECRET,
    notesPerMinute: config.API_AI_NOTES_PER_MINUTE,
    // Plain Postgres: the API acts as the user (RLS). With Supabase, machines use its REST directly.
    userStore: 'asUser' in store ? (userId) => (store as PostgresStore).asUser(userId) : undefined,
    writeNote:
      deps.writeNote ??
      (config.GEMINI_API_KEY
        ? createGeminiNoteWriter({
            apiKey: config.GEMINI_API_KEY,
            model: config.GEMINI_MODEL,
            baseUrl: config.GEMINI_BASE_URL,
            timeoutMs: config.GEMINI_TIMEOUT_MS,
          })
        : undefined),
  });

  // --- machines: provision, status, stop, stream (machine-routes.ts) ---------------------------------
  registerMachineRoutes(app, { guards, machines, watcher, gateway, regions: config.API_REGIONS });

  // --- the user's traders, their preview, the start form's options -------------------------------------
  const callerStore = callerStoreFor(deps);
  registerTraderRoutes(app, {
    userRoute,
    userOf,
    userStore: callerStore,
    maxTradersPerUser: config.API_MAX_TRADERS_PER_USER,
    reloadMachine: createMachineReloader({
      machines,
      fly: deps.fly,
      jwtSecret: config.SUPABASE_JWT_SECRET,
      log: app.log,
    }),
  });
  const klines = new KlinesClient({
    restUrl: config.BINANCE_REST_URL,
    log: app.log,
    metrics: createRuntimeMetrics(),
    timeoutMs: 10_000,
  });
  registerPreviewRoute(app, {
    userRoute,
    validateRoute: pageRoute,
    binanceRestUrl: config.BINANCE_REST_URL,
    klines,
  });
  registerMarketRoutes(app, {
    route: pageRoute,
    binanceRestUrl: config.BINANCE_REST_URL,
    klines,
  });
  registerSignalRoutes(app, { userRoute, userOf, userStore: callerStore });
  registerMachineEventsRoute(app, {
    route: guards.statusRoute,
    userOf,
    watcher,
  });
  // How the page signs in: Supabase Auth when the project is named (the anon key is public by design).
  const supabaseAuth =
    config.SUPABASE_URL && config.SUPABASE_ANON_KEY
      ? { url: config.SUPABASE_URL, anonKey: config.SUPABASE_ANON_KEY }
      : null;
  registerOptionsRoute(app, {
    regions: config.API_REGIONS,
    auth: { supabase: supabaseAuth, devSignIn: config.API_DEV_SIGN_IN },
  });
  // Local mode only (refused elsewhere); off, the routes do not exist.
  if (config.API_DEV_SIGN_IN) registerDevSignInRoutes(app, { config, store });
  registerTimelineRoutes(app, {
    userRoute,
    userOf,
    userStore: callerStore,
    policy: uptimePolicyFrom(config),
  });

  await registerWebhookRoutes(app, {
    config,
    temporal,
    store,
    metrics,
    gracePeriodMs,
    resumeAfterRecovery: (userId) => machines.resumeAfterRecovery(userId),
  });
  registerOpsRoutes(app, { config, temporal, store, metrics });
  await registerDashboardRoutes(app, { supabaseUrl: supabaseAuth?.url });

  return app;
}
