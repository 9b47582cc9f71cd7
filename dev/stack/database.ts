import { resolve } from 'node:path';
import pg from 'pg';
import { repoRoot } from '../../common/tools';
import { migrate } from '../../store/migrate';
import { isListening, startProcess, waitFor, type ManagedProcess } from './processes';

/** Where local mode keeps its embedded database when DATABASE_URL is not set. */
export const EMBEDDED_DB_PORT = Number(process.env.LOCAL_DB_PORT ?? 55432);
export const EMBEDDED_DB_DIR = resolve(repoRoot, '.data', 'pglite');

/**
 * The database for local mode: DATABASE_URL when set, else the embedded PGlite server (started here
 * unless one already serves the port, e.g. from a running `npm start`).
 */
export async function ensureDatabase(opts: {
  databaseUrl?: string;
  quiet?: boolean;
  dataDir?: string;
  port?: number;
}): Promise<{ url: string; process?: ManagedProcess }> {
  if (opts.databaseUrl) return { url: opts.databaseUrl };
  const port = opts.port ?? EMBEDDED_DB_PORT;
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  if (await isListening('127.0.0.1', port)) return { url };
  const proc = startProcess(
    'database',
    process.execPath,
    ['--import', 'tsx', resolve(repoRoot, 'dev/stack/pglite-server.ts')],
    {
      env: {
        PGLITE_PORT: String(port),
        PGLITE_DATA_DIR: opts.dataDir ? resolve(opts.dataDir, 'pglite') : EMBEDDED_DB_DIR,
      },
      quiet: opts.quiet,
    },
  );
  await waitFor(`the embedded database on port ${port}`, () => isListening('127.0.0.1', port), { proc });
  return { url, process: proc };
}

export async function migrateDatabase(url: string, log: (msg: string) => void) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await migrate(client, log);
  } finally {
    await client.end();
  }
}
