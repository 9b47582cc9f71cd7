import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isLoopbackUrl } from '../../common/loopback';
import { createMagicLinks, type OutboxMessage } from './magic-links';
import { AuthError, createSessions, userJson, type StandInUser } from './sessions';

/**
 * A stand-in for Supabase Auth (GoTrue) at `<url>/auth/v1`: the endpoints supabase-js calls for email +
 * password, refresh, the user, sign-out and the magic link, with GoTrue's JSON and error codes, HS256
 * tokens signed with the project's JWT secret, and CORS for a page on another origin. For tests and
 * optional local use (README.md); the real one cannot be reached from here.
 */
export interface SupabaseAuthOptions {
  /** Signs the access tokens (SUPABASE_JWT_SECRET): the API verifies them with it. */
  jwtSecret: string;
  users: StandInUser[];
  /** When set, every request but the link itself must carry it as `apikey`, as Supabase's gateway wants. */
  anonKey?: string;
  /** Access-token lifetime (GoTrue's JWT_EXP; Supabase's default 3600). */
  accessTokenTtlSeconds?: number;
  /** A used refresh token still answers this long (GoTrue's REFRESH_TOKEN_REUSE_INTERVAL, 10 s). */
  reuseIntervalMs?: number;
  /** Where a link goes when its `redirect_to` is not allowed (GoTrue's SITE_URL). */
  siteUrl?: string;
  /** Origins a link may redirect to; default any URL on this host (loopback). */
  redirectOrigins?: string[];
  host?: string;
  port?: number;
}

export interface SupabaseAuthStandIn {
  /** The project URL (SUPABASE_URL): the API and supabase-js take this; Auth is at `<url>/auth/v1`. */
  url: string;
  /** Every magic-link email "sent", oldest first. */
  outbox: OutboxMessage[];
  /** Requests answered, by endpoint (`token:password`, `token:refresh_token`, `user`, `otp`, …). */
  stats: Record<string, number>;
  setAccessTokenTtl(seconds: number): void;
  close(): Promise<void>;
}

const API_VERSION_HEADER = 'x-supabase-api-version';
const passwordBody = z.object({ email: z.string().min(1), password: z.string().min(1) });
const refreshBody = z.object({ refresh_token: z.string().min(1) });
const otpBody = z.object({ email: z.string().min(1), create_user: z.boolean().optional() });
const verifyBody = z.union([
  z.object({ token_hash: z.string().min(1), type: z.string() }),
  z.object({ email: z.string().min(1), token: z.string().min(1), type: z.string() }),
]);

export async function createSupabaseAuth(opts: SupabaseAuthOptions): Promise<SupabaseAuthStandIn> {
  let ttl = opts.accessTokenTtlSeconds ?? 3600;
  const stats: Record<string, number> = {};
  const count = (what: string) => (stats[what] = (stats[what] ?? 0) + 1);
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  // Known once listening (port 0 picks one): the tokens' issuer and the links name it.
  let url = '';
  const authUrl = () => `${url}/auth/v1`;
  const userByEmail = (email: string) => opts.users.find((u) => u.email.toLowerCase() === email.trim().toLowerCase());
  const sessions = createSessions({
    jwtSecret: opts.jwtSecret,
    // Supabase's issuer: the API checks it is `<SUPABASE_URL>/auth/v1`.
    issuer: authUrl,
    users: () => opts.users,
    accessTokenTtlSeconds: () => ttl,
    reuseIntervalMs: opts.reuseIntervalMs ?? 10_000,
  });
  const links = createMagicLinks({ authUrl });

  const redirectFor = (requested: unknown) => {
    const fallback = opts.siteUrl ?? url;
    if (typeof requested !== 'string' || !URL.canParse(requested)) return fallback;
    const origin = new URL(requested).origin;
    const allowed = opts.redirectOrigins ? opts.redirectOrigins.includes(origin) : isLoopbackUrl(requested);
    return allowed ? requested : fallback;
  };
  const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const parse = <T>(schema: z.ZodType<T>, body: unknown): T => {
    const r = schema.safeParse(body ?? {});
    if (!r.success) throw new AuthError(400, 'validation_failed', 'Invalid request body');
    return r.data;
  };

  // --- plumbing: CORS for a page on another origin, empty JSON bodies (sign-out sends none), GoTrue's errors ---
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('access-control-allow-origin', '*');
    // supabase-js reads the API version of an error's answer to know which error format it has.
    void reply.header('access-control-expose-headers', `${API_VERSION_HEADER}, content-length`);
    if (req.method === 'OPTIONS') {
      return reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS')
        .header('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '*')
        .header('access-control-max-age', '600')
        .send();
    }
    const path = req.url.split('?')[0]!;
    const open = (req.method === 'GET' && path === '/auth/v1/verify') || path.startsWith('/auth/v1/.well-known/');
    if (opts.anonKey && path.startsWith('/auth/v1/') && !open) {
      const key = req.headers.apikey;
      if (!key) return reply.code(401).send({ message: 'No API key found in request' });
      if (key !== opts.anonKey) return reply.code(401).send({ message: 'Invalid API key' });
    }
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new AuthError(400, 'bad_json', 'Could not parse request body as JSON'), undefined);
    }
  });
  app.setErrorHandler((err, req, reply) => {
    const e = err instanceof AuthError ? err : new AuthError(500, 'unexpected_failure', (err as Error).message);
    // GoTrue's two shapes: `{ code, message }` from API version 2024-01-01 on, `{ code, error_code, msg }` before.
    const version = req.headers[API_VERSION_HEADER];
    if (typeof version === 'string' && version >= '2024-01-01')
      return reply.code(e.status).header(API_VERSION_HEADER, '2024-01-01').send({ code: e.code, message: e.message });
    return reply.code(e.status).send({ code: e.status, error_code: e.code, msg: e.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ code: 404, error_code: 'not_found', msg: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );

  // --- the endpoints -----------------------------------------------------------------------------------------
  app.post('/auth/v1/token', async (req: FastifyRequest<{ Querystring: { grant_type?: string } }>) => {
    const grantType = req.query.grant_type;
    count(`token:${grantType}`);
    if (grantType === 'password') {
      const { email, password } = parse(passwordBody, req.body);
      const user = userByEmail(email);
      if (!user || user.password !== password)
        throw new AuthError(400, 'invalid_credentials', 'Invalid login credentials');
      return sessions.open(user, 'password');
    }
    if (grantType === 'refresh_token') return sessions.refresh(parse(refreshBody, req.body).refresh_token);
    throw new AuthError(400, 'validation_failed', 'unsupported_grant_type');
  });

  app.get('/auth/v1/user', async (req) => {
    count('user');
    return userJson((await sessions.verify(bearer(req))).user);
  });

  app.post('/auth/v1/logout', async (req: FastifyRequest<{ Querystring: { scope?: string } }>, reply) => {
    count('logout');
    const scope = z.enum(['global', 'local', 'others']).catch('global').parse(req.query.scope);
    const { user, sessionId } = await sessions.verify(bearer(req));
    sessions.logout(user.id, sessionId, scope);
    return reply.code(204).send();
  });

  app.post('/auth/v1/otp', async (req: FastifyRequest<{ Querystring: { redirect_to?: string } }>) => {
    count('otp');
    const { email } = parse(otpBody, req.body);
    const user = userByEmail(email);
    // No sign-ups here: the users are the list given (GoTrue's answer with sign-ups off).
    if (!user) throw new AuthError(422, 'otp_disabled', 'Signups not allowed for otp');
    links.send(user, redirectFor(req.query.redirect_to));
    return {};
  });

  // The email's link: the session goes back to the page in the URL fragment (the implicit flow).
  app.get(
    '/auth/v1/verify',
    async (req: FastifyRequest<{ Querystring: { token?: string; redirect_to?: string } }>, reply) => {
      count('verify:link');
      const fragment = new URLSearchParams();
      let to = redirectFor(req.query.redirect_to);
      try {
        const { userId, redirectTo } = links.redeem({ tokenHash: req.query.token ?? '' });
        if (req.query.redirect_to === undefined) to = redirectTo;
        const session = await sessions.open(
          opts.users.find((u) => u.id === userId)!,
          'magiclink',
        );
        for (const [k, v] of Object.entries(session)) if (k !== 'user') fragment.set(k, String(v));
        fragment.set('type', 'magiclink');
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        fragment.set('error', 'access_denied');
        fragment.set('error_code', err.code);
        fragment.set('error_description', err.message);
      }
      return reply.redirect(`${to.split('#')[0]}#${fragment}`, 303);
    },
  );

  // verifyOtp(): the code from the email, or the link's token hash, for a session as JSON.
  app.post('/auth/v1/verify', async (req) => {
    count('verify:otp');
    const body = parse(verifyBody, req.body);
    const { userId } = links.redeem(
      'token_hash' in body ? { tokenHash: body.token_hash } : { ...body, otp: body.token },
    );
    return sessions.open(
      opts.users.find((u) => u.id === userId)!,
      'otp',
    );
  });

  // HS256 only: no public keys (the API asks only for RS256/ES256 tokens, which this never signs).
  app.get('/auth/v1/.well-known/jwks.json', async () => ({ keys: [] }));
  app.get('/auth/v1/health', async () => ({ name: 'GoTrue', description: 'cloud-execution stand-in' }));
  app.get('/auth/v1/settings', async () => ({ external: { email: true }, disable_signup: true }));
  /** Not Supabase's: the outbox, for the CLI user (tests read `outbox` directly). */
  app.get('/__outbox', async () => links.outbox);

  await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  url = `http://${opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1'}:${port}`;

  return {
    url,
    outbox: links.outbox,
    stats,
    setAccessTokenTtl: (seconds) => void (ttl = seconds),
    close: () => app.close(),
  };
}
