import pg from 'pg';
import { createTestDatabase } from '../test/pg';
import { startPgliteProcess } from '../test/pglite';
import { migrate } from './migrate';

const tables = [
  'billing_accounts',
  'cloud_machines',
  'machine_events',
  'profiles',
  'signals',
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
      expect(results.map((r) => r.applied.length).sort()).toEqual([0, 4]);
    } finally {
      await db.drop();
    }
  });
});
