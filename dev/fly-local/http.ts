import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { FaultInjector, FaultOp, RateLimiter } from './faults';
import { leaseActive, type MachineRecord } from './machine-table';
import { sleep } from './processes';

/**
 * HTTP plumbing shared by the routes: the Fastify app (JSON bodies, `fly-request-id`, Fly's `{error}` bodies),
 * the token check, and `handle()`, which wraps every Machines API route in auth, injected faults and rate limits.
 */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly flyStatus?: string,
  ) {
    super(message);
  }
  body() {
    return { error: this.message, ...(this.flyStatus ? { status: this.flyStatus } : {}) };
  }
}

/** Where the Machines API routes live. */
export const MACHINES_BASE = '/v1/apps/:app_name/machines';

type Params = { app_name: string; machine_id: string; key: string };
export type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | string[]>; Body: unknown }>;
export type Result = { status: number; body?: unknown };

export function bool(v: unknown): boolean {
  return v === true || v === 'true' || v === '1';
}

export function body(req: Req): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b))
    throw new HttpError(400, 'invalid_argument: body must be a JSON object');
  return b as Record<string, unknown>;
}

/** `Authorization: Bearer <token>` (or Fly's `FlyV1 <token>`) with the one accepted token. */
export function authorized(authorization: string | undefined, token: string): boolean {
  const [scheme, credential] = (authorization ?? '').split(' ');
  return ['Bearer', 'FlyV1'].includes(scheme ?? '') && credential === token;
}

/** The machine the request names, in the app it names; 404 otherwise (and for destroyed ones, unless allowed). */
export function machineOf(
  machines: ReadonlyMap<string, MachineRecord>,
  req: Req,
  { allowDestroyed = false } = {},
): MachineRecord {
  const m = machines.get(req.params.machine_id);
  if (!m || m.app !== req.params.app_name) throw new HttpError(404, 'machine not found');
  if (!allowDestroyed && m.state === 'destroyed') throw new HttpError(404, 'machine not found');
  return m;
}

/** A mutating call on a leased machine needs the lease's nonce: 409 otherwise. */
export function requireLease(m: MachineRecord, req: Req): void {
  const lease = leaseActive(m);
  if (lease && req.headers['fly-machine-lease-nonce'] !== lease.nonce) {
    throw new HttpError(
      409,
      `lease currently held by ${lease.owner}, expires at ${new Date(lease.expiresAtMs).toISOString()}`,
    );
  }
}

export interface HttpOptions {
  token: string;
  faults: FaultInjector;
  /** Fly's per-action rate limits; none when undefined. */
  limiter?: RateLimiter;
  logger?: FastifyServerOptions['logger'];
}

export type FlyLocalHttp = ReturnType<typeof createHttp>;

export function createHttp({ token, faults, limiter, logger }: HttpOptions) {
  const app = Fastify({ logger: logger ?? false, forceCloseConnections: true });
  /** Requests held open by a `hang` fault or a `wait`: close() answers them all. */
  const hanging = new Set<() => void>();

  /** One Machines API route: auth, then the operation's faults and rate limit, then `fn`. */
  function handle(op: FaultOp, fn: (req: Req) => Result | Promise<Result>) {
    return async (req: Req, reply: FastifyReply) => {
      if (!authorized(req.headers.authorization, token)) {
        throw new HttpError(401, 'unauthorized');
      }
      const region = op === 'create' ? (body(req).region as string | undefined) : undefined;
      const fault = faults.decide(op, region);
      if (fault.latencyMs) await sleep(fault.latencyMs);
      if (fault.hang) {
        await new Promise<void>((resolve) => hanging.add(resolve));
        return reply;
      }
      if (fault.error && !fault.afterEffect)
        throw new HttpError(fault.error.status, fault.error.message, fault.error.flyStatus);
      if (limiter && !limiter.take(op, req.params.machine_id ?? req.params.app_name)) {
        throw new HttpError(429, 'rate limit exceeded');
      }
      const result = await fn(req);
      if (fault.error) throw new HttpError(fault.error.status, fault.error.message, fault.error.flyStatus);
      reply.code(result.status);
      return result.body === undefined ? reply.send() : reply.send(result.body);
    };
  }

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, raw, done) => {
    const text = String(raw);
    if (!text.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpError(400, 'invalid_argument: request body is not valid JSON'), undefined);
    }
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('fly-request-id', `01${randomBytes(12).toString('hex').toUpperCase()}-local`);
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    // Like Fly's proxy, a rate-limited answer says when to come back.
    if (err instanceof HttpError && err.status === 429) void reply.header('retry-after', '1');
    if (err instanceof HttpError) return reply.code(err.status).send(err.body());
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err }, 'fly-local internal error');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));

  return { app, handle, hanging };
}
