import { readdirSync } from 'node:fs';
import pg from 'pg';
import { createTestDatabase } from '../test/pg';
import { startPgliteProcess } from '../test/pglite';
import { migrate, migrationsDir } from './migrate';

/** Every migration the repository has: a new one must apply here too. */
const migrationCount = readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).length;

const tables = [
  'api_rate_counters',
  'api_stream_leases',
  'billing_accounts',
  'cloud_machines',
  'machine_events',
  'profiles',
  'runtime_checkpoints',
  'signals',
  'stripe_customers',
  'traders',
  'webhook_events',
];

async function migrateTwice(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const first = await migrate(client);
    const second = await migrate(client);
    const { rows } = await client.query<{ tablename: string; rowsecurity: boolean }>(
      `select tablename, rowsecurity from pg_tables where schemaname = 'public' order by tablename`,
    );
    const { rows: recorded } = await client.query('select version from supabase_migrations.schema_migrations');
    return { first, second, tables: rows, recorded: recorded.length };
  } finally {
    await client.end();
  }
}

describe('npm run db:migrate', () => {
  test('applies every migration once on real Postgres, and a second run is a no-op', async () => {
    // The template is already migrated; a blank database shows the first run too.
    const db = await createTestDatabase();
    try {
      await db.pool.query('drop schema public cascade; create schema public; drop schema supabase_migrations cascade');
      const r = await migrateTwice(db.url);
      expect(r.first.applied.length).toBeGreaterThan(0);
      expect(r.second.applied).toEqual([]);
      expect(r.second.skipped).toEqual(r.first.applied);
      expect(r.recorded).toBe(r.first.applied.length);
      expect(r.tables.map((t) => t.tablename)).toEqual(tables);
      expect(r.tables.every((t) => t.rowsecurity)).toBe(true);
    } finally {
      await db.drop();
    }
  });

  test('applies the same migrations twice cleanly on PGlite (the embedded default), served over its socket', async () => {
    const pglite = await startPgliteProcess();
    try {
      const r = await migrateTwice(pglite.url);
      expect(r.first.authShim).toBe('applied');
      expect(r.first.applied.length).toBeGreaterThan(0);
      expect(r.second.applied).toEqual([]);
      expect(r.tables.map((t) => t.tablename)).toEqual(tables);
      expect(r.tables.every((t) => t.rowsecurity)).toBe(true);
    } finally {
      await pglite.stop();
    }
  });

  test('two migrators at once do not trip over each other', async () => {
    const db = await createTestDatabase();
    try {
      await db.pool.query('drop schema public cascade; create schema public; drop schema supabase_migrations cascade');
      const clients = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
      await Promise.all(clients.map((c) => c.connect()));
      const results = await Promise.all(clients.map((c) => migrate(c)));
      await Promise.all(clients.map((c) => c.end()));
      // One applies them all, the other finds nothing left to do.
      expect(results.map((r) => r.applied.length).sort()).toEqual([0, migrationCount]);
    } finally {
      await db.drop();
    }
  });

  test('the screener app’s own profiles table keeps its security: RLS, policies and grants as the app set them', async () => {
    const db = await createTestDatabase();
    try {
      await db.pool.query('drop schema public cascade; create schema public; drop schema supabase_migrations cascade');
      // The app's table, as a Supabase project has it before this project's migrations: its own policy, broad grants.
      await db.pool.query(`
        create table public.profiles (
          id uuid primary key references auth.users (id) on delete cascade,
          subscription_tier text not null default 'free',
          display_name text
        );
        alter table public.profiles enable row level security;
        create policy app_update_own on public.profiles for update to authenticated using (id = auth.uid());
        grant select, insert, update, delete on public.profiles to anon, authenticated;`);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await migrate(client);
      } finally {
        await client.end();
      }
      const can = async (role: string, privilege: string) =>
        (
          await db.pool.query<{ ok: boolean }>(`select has_table_privilege($1, 'public.profiles', $2) as ok`, [
            role,
            privilege,
          ])
        ).rows[0]!.ok;
      for (const privilege of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
        expect(await can('authenticated', privilege)).toBe(true);
        expect(await can('anon', privilege)).toBe(true);
      }
      const { rows: policies } = await db.pool.query<{ policyname: string }>(
        `select policyname from pg_policies where schemaname = 'public' and tablename = 'profiles' order by 1`,
      );
      // The app's policy stays, and no policy of ours is added to its table.
      expect(policies.map((p) => p.policyname)).toEqual(['app_update_own']);
    } finally {
      await db.drop();
    }
  });
});
