import type { FastifyInstance, FastifyRequest } from 'fastify';
import { durationMs } from '../workflows/contract';
import { bearerToken, createTokenVerifier, type AuthenticatedUser } from './auth';
import type { ApiConfig } from './config';
import { HttpProblem } from './problem';

/** `GET /v1/machines/me` may be read this many times the per-user budget, counted apart from it. */
export const STATUS_BUDGET_FACTOR = 10;

/** A route's guards: its auth hook, then its rate-limit budget. */
export interface RouteGuard {
  onRequest: (req: FastifyRequest) => Promise<void>;
  preHandler: ReturnType<FastifyInstance['rateLimit']>;
}

export type RouteGuards = ReturnType<typeof createRouteGuards>;

/**
 * Who may call a user route and how often: the Supabase token check (the user becomes `req.user`) and
 * the three per-user budgets, counted under their own keys. Needs `@fastify/rate-limit` registered.
 */
export function createRouteGuards(app: FastifyInstance, config: ApiConfig) {
  const verifyToken = createTokenVerifier({
    jwtSecret: config.SUPABASE_JWT_SECRET,
    supabaseUrl: config.SUPABASE_URL,
    maxLifetimeSeconds: durationMs(config.API_MAX_TOKEN_LIFETIME)! / 1000,
  });
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
  /** A budget of `max` requests a window per user (per address before auth), counted under `prefix`. */
  const budget = (max: number, prefix: string) =>
    app.rateLimit({
      max,
      timeWindow: durationMs(config.API_RATE_LIMIT_WINDOW)!,
      keyGenerator: (req) => `${prefix}${req.user?.id ?? req.ip}`,
    });
  // One budget per user across every /v1/machines route (the stream's upgrade included).
  const perUserLimit = budget(config.API_RATE_LIMIT_MAX, '');
  // Status reads (a dashboard polls them, maybe from several tabs) have their own, larger budget
  // under another key, so polling never spends the one Start/Stop/stream need.
  const statusLimit = budget(config.API_RATE_LIMIT_MAX * STATUS_BUDGET_FACTOR, 'status:');
  // The page's own reads (the chart's candles, the editor's checks while typing) likewise.
  const pageLimit = budget(config.API_RATE_LIMIT_MAX * STATUS_BUDGET_FACTOR, 'page:');

  const guard = (preHandler: RouteGuard['preHandler'], allowSubprotocol = false): RouteGuard => ({
    onRequest: authenticate(allowSubprotocol),
    preHandler,
  });
  return {
    userOf,
    /** Start, stop, traders, signals, timeline: the per-user budget. */
    userRoute: guard(perUserLimit),
    /** The machine's status and its event stream: the `status:` budget. */
    statusRoute: guard(statusLimit),
    /** The page's own reads (market candles, trader validation): the `page:` budget. */
    pageRoute: guard(pageLimit),
    /** The WebSocket: the token may come in the subprotocol list; the per-user budget. */
    streamRoute: guard(perUserLimit, true),
  };
}
