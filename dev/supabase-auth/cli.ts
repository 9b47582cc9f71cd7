import { z } from 'zod';
import { ConfigError, contractEnv, parseEnv } from '../../common/config';
import { ELITE_USER_ID, FREE_USER_ID } from '../stack/seed';
import { createSupabaseAuth } from './server';
import type { StandInUser } from './sessions';

/**
 * `npx tsx dev/supabase-auth/cli.ts`: the Supabase Auth stand-in on a local port, with the users
 * `npm start` seeds (passwords below) unless SUPABASE_AUTH_USERS lists others. Magic-link emails are
 * printed here (and served at /__outbox). Local use only: see README.md for pointing the API at it.
 */
const SEEDED: StandInUser[] = [
  { id: ELITE_USER_ID, email: 'elite@example.test', password: 'elite-password' },
  { id: FREE_USER_ID, email: 'free@example.test', password: 'free-password' },
];
const usersSchema = z.array(z.object({ id: z.uuid(), email: z.email(), password: z.string().min(1) })).min(1);

const env = (() => {
  try {
    return parseEnv({
      SUPABASE_JWT_SECRET: contractEnv.SUPABASE_JWT_SECRET.unwrap(),
      SUPABASE_ANON_KEY: contractEnv.SUPABASE_ANON_KEY,
      SUPABASE_AUTH_PORT: z.coerce.number().int().min(0).max(65535).default(54321),
      SUPABASE_AUTH_TOKEN_TTL: z.coerce.number().int().min(1).default(3600),
      SUPABASE_AUTH_USERS: z
        .string()
        .optional()
        .transform((v, ctx) => {
          if (v === undefined) return SEEDED;
          try {
            return usersSchema.parse(JSON.parse(v));
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: `must be JSON like [{"id","email","password"}]: ${String(err)}` });
            return z.NEVER;
          }
        }),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78);
    }
    throw err;
  }
})();

async function main() {
  const auth = await createSupabaseAuth({
    jwtSecret: env.SUPABASE_JWT_SECRET,
    anonKey: env.SUPABASE_ANON_KEY,
    users: env.SUPABASE_AUTH_USERS,
    accessTokenTtlSeconds: env.SUPABASE_AUTH_TOKEN_TTL,
    port: env.SUPABASE_AUTH_PORT,
  });
  const printed = { n: 0 };
  setInterval(() => {
    for (const m of auth.outbox.slice(printed.n)) console.log(`supabase-auth: email to ${m.to}: ${m.link}`);
    printed.n = auth.outbox.length;
  }, 500).unref();
  console.log(
    [
      `supabase-auth: Supabase Auth stand-in at ${auth.url}/auth/v1`,
      `  SUPABASE_URL=${auth.url}`,
      `  users: ${env.SUPABASE_AUTH_USERS.map((u) => u.email).join(', ')}`,
    ].join('\n'),
  );
  const stop = () => void auth.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error('supabase-auth failed to start:', err);
  process.exit(1);
});
