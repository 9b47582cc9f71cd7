import { z } from 'zod';
import { contractEnv, parseEnv } from '../common/config';
import { mintAccessToken } from './auth';

/**
 * Prints an access token for a local user, signed like Supabase's (HS256 with SUPABASE_JWT_SECRET):
 * `npx tsx api/dev-token.ts <user-uuid> [ttl-seconds]`. For local mode only: it needs the project secret.
 */
async function main() {
  const env = parseEnv({ SUPABASE_JWT_SECRET: contractEnv.SUPABASE_JWT_SECRET.unwrap() });
  const args = z
    .tuple([z.uuid({ message: 'first argument must be the user id (a UUID)' }), z.coerce.number().int().positive()])
    .safeParse([process.argv[2], process.argv[3] ?? 24 * 3600]);
  if (!args.success) {
    console.error(`usage: npx tsx api/dev-token.ts <user-uuid> [ttl-seconds]\n${args.error.issues[0]?.message ?? ''}`);
    process.exit(64);
  }
  const [userId, ttlSeconds] = args.data;
  process.stdout.write(`${await mintAccessToken({ jwtSecret: env.SUPABASE_JWT_SECRET, userId, ttlSeconds })}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
