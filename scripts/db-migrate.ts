import { parseEnv, pickEnv } from '../common/config';
import { ensureDatabase, migrateDatabase } from '../dev/stack/database';

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded default. */
async function main() {
  const env = parseEnv(pickEnv('DATABASE_URL'));
  const db = await ensureDatabase({ databaseUrl: env.DATABASE_URL, quiet: true });
  try {
    const result = await migrateDatabase(db.url, (msg) => console.log(`[db:migrate] ${msg}`));
    console.log(
      `[db:migrate] ${env.DATABASE_URL ? 'DATABASE_URL' : `embedded database (${db.url})`}: ` +
        `${result.applied.length} applied, ${result.skipped.length} already there` +
        (result.authShim === 'supabase' ? ' (Supabase auth schema detected: shim not applied)' : ''),
    );
  } finally {
    await db.process?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
