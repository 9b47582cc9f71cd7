import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { devSignInIssues, refuse } from '../common/config-checks';
import type { PostgresStore } from '../store/postgres';
import type { ServiceStore } from '../store/types';
import { durationMs } from '../workflows/contract';
import { mintAccessToken } from './auth';
import type { ApiConfig } from './config';
import { HttpProblem, zodErrors } from './problem';

/**
 * Local mode's "Dev sign-in" (API_DEV_SIGN_IN): the dashboard lists the local database's users and
 * signs in as one of them without a password, with a token minted like Supabase's (HS256,
 * SUPABASE_JWT_SECRET). The one place a user id comes from a body: that is why it exists only on a
 * stack that is clearly local (common/config-checks.ts devSignInIssues, checked again here) and is
 * left out of the OpenAPI document. Off, the routes are not registered: 404 like any unknown path.
 */

/** A dev token lives an hour (or less, within API_MAX_TOKEN_LIFETIME): the page then asks to sign in again. */
export const DEV_TOKEN_TTL_SECONDS = 3600;

export const devUserSchema = z.object({ id: z.string(), email: z.string().nullable(), tier: z.string() });
export type DevUser = z.infer<typeof devUserSchema>;
export const devSignInResponseSchema = z.object({
  access_token: z.string(),
  expires_in: z.number().int(),
  token_type: z.literal('bearer'),
});
const signInBody = z.strictObject({ userId: z.uuid({ message: 'must be a user id (a UUID)' }) });

/** Most users the list shows: local mode seeds two; a long list means this is not the database it is for. */
const MAX_USERS = 50;

export function registerDevSignInRoutes(app: FastifyInstance, deps: { config: ApiConfig; store: ServiceStore }) {
  const { config } = deps;
  // The same refusal as at start-up, for apps built in-process (tests) from a parsed config.
  refuse(
    devSignInIssues({
      API_DEV_SIGN_IN: 'true',
      FLY_API_URL: config.FLY_API_URL,
      SUPABASE_URL: config.SUPABASE_URL,
      SUPABASE_SERVICE_KEY: config.SUPABASE_SERVICE_KEY,
      DATABASE_URL: config.DATABASE_URL,
    }),
  );
  if (!('pool' in deps.store)) throw new Error('API_DEV_SIGN_IN needs the Postgres store (DATABASE_URL)');
  const { pool } = deps.store as PostgresStore;
  const ttlSeconds = Math.min(DEV_TOKEN_TTL_SECONDS, durationMs(config.API_MAX_TOKEN_LIFETIME)! / 1000);

  const users = async (id?: string): Promise<DevUser[]> => {
    const { rows } = await pool.query(
      `select u.id::text as id, u.email, coalesce(p.subscription_tier::text, 'anonymous') as tier
         from auth.users u left join public.profiles p on p.id = u.id
        ${id ? 'where u.id = $1' : ''}
        order by u.email nulls last, u.id
        limit ${MAX_USERS}`,
      id ? [id] : [],
    );
    return z.array(devUserSchema).parse(rows);
  };

  app.get('/v1/dev/users', async (_req, reply) =>
    reply.header('cache-control', 'no-store').send({ users: await users() }),
  );

  app.post('/v1/dev/sign-in', async (req, reply) => {
    const body = signInBody.safeParse(req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'invalid request body', { errors: zodErrors(body.error) });
    const [user] = await users(body.data.userId);
    if (!user) throw new HttpProblem(404, `no local user ${body.data.userId}; GET /v1/dev/users lists them`);
    const accessToken = await mintAccessToken({
      jwtSecret: config.SUPABASE_JWT_SECRET,
      userId: user.id,
      ttlSeconds,
      claims: user.email ? { email: user.email } : {},
    });
    req.log.info(
      { userId: user.id },
      'dev sign-in: a token was given without a password (API_DEV_SIGN_IN, local mode)',
    );
    return reply
      .header('cache-control', 'no-store')
      .send(devSignInResponseSchema.parse({ access_token: accessToken, expires_in: ttlSeconds, token_type: 'bearer' }));
  });
}
