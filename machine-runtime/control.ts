import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { bearerFrom, checkHandedUserToken, safeEqual, type TokenUse, type TokenVerifier } from './auth';
import type { Log } from './log';

const credentialsBody = z.object({ token: z.string().min(1) });

export function problem(reply: FastifyReply, status: number, detail: string) {
  const title = status === 401 ? 'Unauthorized' : status >= 500 ? 'Internal Server Error' : 'Bad Request';
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title, status, detail });
}

export interface ControlDeps {
  userId: string;
  /** CONTROL_TOKEN: a static secret accepted wherever a control token is. */
  controlToken?: string;
  verify: TokenVerifier;
  log: Log;
  /** The full health object (`ok` plus reasons and details). */
  health: () => { ok: boolean };
  /** Re-reads the traders now; what /control/reload answers. */
  reload: () => Promise<object>;
  /** Installs a renewed user token (already checked). */
  installToken: (token: string, expiresAt: number) => void;
}

/** Why the request's bearer token may not be used for `use`, or null when it may. */
export function createAuthenticator(deps: Pick<ControlDeps, 'controlToken' | 'verify'>) {
  return async (req: FastifyRequest, use: TokenUse): Promise<string | null> => {
    const token = bearerFrom(req.headers);
    if (!token) return 'missing bearer token';
    if (use === 'control' && deps.controlToken && safeEqual(token, deps.controlToken)) return null;
    const check = await deps.verify(token, use);
    return check.ok ? null : `token refused: ${check.reason}`;
  };
}

/** A preHandler that answers 401 unless the bearer token may be used for `use`. */
export function tokenGuard(deps: Pick<ControlDeps, 'controlToken' | 'verify'>, use: TokenUse) {
  const authenticate = createAuthenticator(deps);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const refused = await authenticate(req, use);
    if (refused) return problem(reply, 401, refused);
  };
}

/**
 * `/health` and `/control/*`. Everything but the bare `{ ok }` of /health needs a control token
 * (purpose `control`, this user, ≤ 5 minutes; auth.ts) or CONTROL_TOKEN: a stream token, a user's
 * access token or a token of another machine is refused with 401 before anything is done.
 */
export function registerControlRoutes(app: FastifyInstance, deps: ControlDeps) {
  const authenticate = createAuthenticator(deps);
  const asControl = tokenGuard(deps, 'control');

  // Fly's and Docker's checks send no token: they get `{ ok }` and the status. The worker's probe
  // sends a control token and gets the reasons (and trader names, errors, counters) as well.
  app.get('/health', async (req, reply) => {
    const h = deps.health();
    const status = h.ok ? 200 : 503;
    if (!req.headers.authorization) return reply.code(status).send({ ok: h.ok });
    const refused = await authenticate(req, 'control');
    if (refused) return problem(reply, 401, refused);
    return reply.code(status).send(h);
  });

  app.post('/control/reload', { preHandler: asControl }, async () => deps.reload());

  app.post('/control/credentials', { preHandler: asControl }, async (req, reply) => {
    const body = credentialsBody.safeParse(req.body);
    if (!body.success) return problem(reply, 400, 'body must be { "token": "<jwt>" }');
    // Wall-clock time: the runtime's `clock` is market time (the replay's in tests).
    const check = checkHandedUserToken(body.data.token, deps.userId, Date.now());
    if (!check.ok) return problem(reply, 400, `new token refused: ${check.reason}`);
    deps.installToken(body.data.token, check.expiresAt);
    deps.log.info({ expiresAt: new Date(check.expiresAt).toISOString() }, 'user token renewed');
    return { ok: true, expiresAt: new Date(check.expiresAt).toISOString() };
  });
}
