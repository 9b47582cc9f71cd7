import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClientBase } from 'pg';

export const migrationsDir = resolve(__dirname, '..', 'supabase', 'migrations');
export const authShimFile = resolve(__dirname, '..', 'supabase', 'local', 'auth-shim.sql');

const SHIM_COMMENT = 'cloud-execution local auth shim';
// Any constant works; it only has to be the same for every migrator of this project.
const MIGRATION_LOCK = 7_233_001;

export interface MigrationResult {
  applied: string[];
  skipped: string[];
  authShim: 'applied' | 'supabase';
}

/**
 * Applies pending migrations in order, recording them in the table the Supabase CLI uses
 * (`supabase_migrations.schema_migrations`) so `supabase db push` and this agree. Safe to run twice,
 * and concurrently (an advisory lock serialises migrators).
 */
export async function migrate(
  client: ClientBase,
  log: (msg: string) => void = () => undefined,
  dir = migrationsDir,
): Promise<MigrationResult> {
  await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    const authShim = await ensureAuth(client, log);
    await client.query(`create schema if not exists supabase_migrations`);
    await client.query(
      `create table if not exists supabase_migrations.schema_migrations (version text primary key, statements text[], name text)`,
    );
    const done = new Set(
      (await client.query<{ version: string }>('select version from supabase_migrations.schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
    const result: MigrationResult = { applied: [], skipped: [], authShim };
    for (const file of files) {
      const [version, ...rest] = file.replace(/\.sql$/, '').split('_');
      if (!version) continue;
      if (done.has(version)) {
        result.skipped.push(file);
        continue;
      }
      const sql = await readFile(join(dir, file), 'utf8');
      log(`applying migration ${file}`);
      await client.query('begin');
      try {
        await client.query(sql);
        await client.query(
          'insert into supabase_migrations.schema_migrations (version, statements, name) values ($1, $2, $3)',
          [version, [sql], rest.join('_')],
        );
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      result.applied.push(file);
    }
    return result;
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}

/** Supabase has a real `auth` schema; anywhere else we install (or refresh) the local shim. */
async function ensureAuth(client: ClientBase, log: (msg: string) => void): Promise<'applied' | 'supabase'> {
  const { rows } = await client.query<{ comment: string | null; exists: boolean }>(
    `select exists (select 1 from pg_namespace where nspname = 'auth') as exists,
            obj_description((select oid from pg_namespace where nspname = 'auth'), 'pg_namespace') as comment`,
  );
  const row = rows[0];
  if (row?.exists && row.comment !== SHIM_COMMENT) return 'supabase';
  log(row?.exists ? 'refreshing the local auth shim' : 'installing the local auth shim (plain Postgres, not Supabase)');
  await client.query(await readFile(authShimFile, 'utf8'));
  return 'applied';
}
