import { ConfigError, parseEnv, pickEnv } from '../common/config';
import { ensureDatabase, migrateDatabase } from '../dev/stack/database';
import type { ManagedProcess } from '../dev/stack/processes';
import { ensureTemporal } from '../dev/stack/temporal';

/**
 * `npm start`: the whole local stack on one machine (DESIGN §7). Each piece honours the contract's
 * variables; Ctrl-C stops everything this script started.
 */
const started: ManagedProcess[] = [];
const log = (msg: string) => console.log(`[start] ${msg}`);

async function main() {
  const env = parseEnv(pickEnv('TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'DATABASE_URL', 'PORT'));

  log(env.DATABASE_URL ? 'database: DATABASE_URL' : 'database: embedded PGlite in .data/pglite');
  const db = await ensureDatabase({ databaseUrl: env.DATABASE_URL });
  if (db.process) started.push(db.process);
  const migrated = await migrateDatabase(db.url, (m) => log(`migrations: ${m}`));
  log(`migrations: ${migrated.applied.length} applied, ${migrated.skipped.length} already there`);

  log(`Temporal: ${env.TEMPORAL_ADDRESS} (namespace ${env.TEMPORAL_NAMESPACE})`);
  const temporal = await ensureTemporal(env.TEMPORAL_ADDRESS, env.TEMPORAL_NAMESPACE);
  if (temporal.process) started.push(temporal.process);

  console.log('');
  log('ready');
  log(`  database:     ${db.url}`);
  log(`  Temporal:     ${env.TEMPORAL_ADDRESS}${temporal.uiUrl ? `   UI: ${temporal.uiUrl}` : ''}`);
  log('Ctrl-C stops everything started here.');
}

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  for (const proc of [...started].reverse()) await proc.stop();
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : `[start] failed: ${(err as Error).stack ?? String(err)}`);
  void shutdown(1);
});
