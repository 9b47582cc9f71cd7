import { randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import type { FlyClient } from '../fly/client';
import type { PostgresStore } from '../store/postgres';
import type { ServiceStore } from '../store/types';
import { durationMs, lifecycleSettings, TASK_QUEUE } from '../workflows/contract';
import { bearerToken, createTokenVerifier, type AuthenticatedUser } from './auth';
import { lifecycleSettingsFrom, type ApiConfig } from './config';
import { createMachineService, provisionRequestSchema } from './machines';
import { createApiMetrics, type ApiMetrics } from './metrics';
import { HttpProblem, sendProblem, zodErrors } from './problem';
import { registerDashboardRoutes } from './dashboard/routes';
import { registerDevSignInRoutes } from './dev-sign-in';
import { createStreamLeases, sharedRateLimitStore } from './shared-limits';
import { createStreamGateway } from './stream';
import { createGeminiNoteWriter, type AiNoteWriter } from '../common/ai-note';
import { registerMachineApi } from './machine-api';
import { registerOpsRoutes } from './ops-routes';
import { registerWebhookRoutes } from './webhook-routes';
import { createSupabaseUserStore } from '../store/supabase';
import type { UserTraderStore } from '../store/types';
import { registerOptionsRoute, regionFor } from './options';
import { historyStoreFor, registerTimelineRoutes } from './timeline';
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
/** `GET /v1/machines/me` may be read this many times the per-user budget, counted apart from it. */
export const STATUS_BUDGET_FACTOR = 10;

/** Builds the API (routes, auth, errors, metrics) from its dependencies; `server.ts` owns the process. */
export async function createApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, temporal, store } = deps;
  const metrics = deps.metrics ?? createApiMetrics();
  const logger = deps.logger ?? pino({ level: 'silent' });
  const verifyToken = createTokenVerifier({
    jwtSecret: config.SUPABASE_JWT_SECRET,
    supabaseUrl: config.SUPABASE_URL,
    maxLifetimeSeconds: durationMs(config.API_MAX_TOKEN_LIFETIME)! / 1000,
  });
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

  // --- one error shape ---------------------------------------------------------------------------
  app.setErrorHandler((err: FastifyError | HttpProblem | z.ZodError, req, reply) => {
    if (err instanceof HttpProblem) {
      if (err.extra.headers) void reply.headers(err.extra.headers);
      return sendProblem(reply, err.statusCode, err.detail, err.extra.errors ? { errors: err.extra.errors } : {});
    }
    if (err instanceof z.ZodError) return sendProblem(reply, 400, 'invalid request', { errors: zodErrors(err) });
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      req.log.info({ code: err.code, status }, err.message);
      return sendProblem(reply, status, clientErrorDetail(err as FastifyError, status));
    }
    // 5xx: the whole error goes to the log, the caller gets a generic detail and the request id.
    req.log.error({ err }, 'request failed');
    return sendProblem(reply, 500, 'something went wrong on our side; quote the requestId if you report it');
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));

  // Empty JSON bodies are fine (`{}` is implied); anything unparsable is a 400 that says so.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpProblem(400, 'body is not valid JSON'), undefined);
    }
  });

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

  // --- auth ------------------------------------------------------------------------------------------
  const authenticate = (allowSubprotocol: boolean) => async (req: FastifyRequest) => {
    const token = bearerToken(req, allowSubprotocol);
    if (!token)
      throw new HttpProblem(401, 'missing bearer token: send Authorization: Bearer <Supabase access token>', {
        headers: { 'www-authenticate': 'Bearer' },
      });
    req.user = await verifyToken(token);
  };
  const userOf = (req: FastifyRequest): AuthenticatedUser => {
    if (!req.user) throw new Error('route is missing its auth hook');
    return req.user;
  };
  // One budget per user across every /v1/machines route (the stream's upgrade included).
  const perUserLimit = app.rateLimit({
    max: config.API_RATE_LIMIT_MAX,
    timeWindow: durationMs(config.API_RATE_LIMIT_WINDOW)!,
    keyGenerator: (req) => req.user?.id ?? req.ip,
  });
  const userRoute = { onRequest: authenticate(false), preHandler: perUserLimit };
  // Status reads (a dashboard polls them, maybe from several tabs) have their own, larger budget
  // under another key, so polling never spends the one Start/Stop/stream need.
  const statusLimit = app.rateLimit({
    max: config.API_RATE_LIMIT_MAX * STATUS_BUDGET_FACTOR,
    timeWindow: durationMs(config.API_RATE_LIMIT_WINDOW)!,
    keyGenerator: (req) => `status:${req.user?.id ?? req.ip}`,
  });
  // The page's own reads (the chart's candles, the editor's checks while typing) likewise.
  const pageLimit = app.rateLimit({
    max: config.API_RATE_LIMIT_MAX * STATUS_BUDGET_FACTOR,
    timeWindow: durationMs(config.API_RATE_LIMIT_WINDOW)!,
    keyGenerator: (req) => `page:${req.user?.id ?? req.ip}`,
  });
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

  // --- machines ----------------------------------------------------------------------------------------
  app.post('/v1/machines', userRoute, async (req, reply) => {
    const user = userOf(req);
    const body = provisionRequestSchema.safeParse(req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'invalid request body', { errors: zodErrors(body.error) });
    const region = regionFor(body.data.region, config.API_REGIONS);
    const entitled = await machines.entitlement(user.id);
    // 403: not on the elite tier; 402: elite, but the payment is overdue and its grace period has ended.
    if (!entitled.entitled) throw new HttpProblem(entitled.denied === 'payment_overdue' ? 402 : 403, entitled.detail);
    const started = await machines.provision(user.id, { ...body.data, region });
    watcher.poke(user.id);
    req.log.info({ userId: user.id, workflowId: started.workflowId, state: started.state }, 'provision requested');
    return reply
      .code(202)
      .header('location', '/v1/machines/me')
      .send({ workflowId: started.workflowId, state: started.state });
  });

  app.get('/v1/machines/me', { onRequest: authenticate(false), preHandler: statusLimit }, async (req) => {
    const status = await machines.status(userOf(req).id);
    if (!status) throw new HttpProblem(404, 'you have no machine; POST /v1/machines starts one');
    return status;
  });

  app.post('/v1/machines/me/stop', userRoute, async (req, reply) => {
    const user = userOf(req);
    const result = await machines.stop(user.id);
    watcher.poke(user.id);
    req.log.info({ userId: user.id }, 'stop requested');
    return reply.code(202).send(result);
  });

  app.route({
    method: 'GET',
    url: '/v1/machines/me/stream',
    onRequest: authenticate(true),
    preHandler: perUserLimit,
    // A plain GET (no Upgrade) gets a clear answer instead of an empty 404.
    handler: async () => {
      throw new HttpProblem(426, 'this route is a WebSocket: open it with an Upgrade request', {
        headers: { upgrade: 'websocket' },
      });
    },
    wsHandler: (socket, req) => {
      const user = userOf(req);
      void gateway.handle(socket, user.id, user.expiresAt);
    },
  });

  // --- the user's traders, their preview, the start form's options -------------------------------------
  registerTraderRoutes(app, {
    userRoute,
    userOf,
    userStore: userTraderStore(deps),
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
  const pageRoute = { onRequest: authenticate(false), preHandler: pageLimit };
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
  registerSignalRoutes(app, { userRoute, userOf, userStore: userTraderStore(deps) });
  registerMachineEventsRoute(app, {
    route: { onRequest: authenticate(false), preHandler: statusLimit },
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
    userStore: historyStoreFor(deps),
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

/**
 * The caller's own store for their traders, under RLS: plain Postgres acts as the user; Supabase goes
 * through PostgREST with the caller's own access token (and the anon key). Neither: undefined (501).
 */
function userTraderStore({ store, config }: AppDeps) {
  if ('asUser' in store) return (user: AuthenticatedUser): UserTraderStore => (store as PostgresStore).asUser(user.id);
  const { SUPABASE_URL: url, SUPABASE_ANON_KEY: anonKey } = config;
  if (!url || !anonKey) return undefined;
  return (user: AuthenticatedUser, req: FastifyRequest): UserTraderStore => {
    const token = bearerToken(req, false)!; // authenticated: the route's auth hook verified it
    return createSupabaseUserStore({ url, anonKey, userId: user.id, getAccessToken: () => token });
  };
}

function clientErrorDetail(err: FastifyError, status: number): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request body too large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported content type: send application/json';
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'content-length does not match the body';
    default:
      return status === 429 ? `too many requests: ${err.message || 'slow down and retry later'}` : err.message;
  }
}
