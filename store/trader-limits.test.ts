import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../test/pg';
import { migrationsDir } from './migrate';

const definition = (bytes: number) => ({
  symbols: ['BTCUSDT'],
  interval: '5m',
  filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] },
  note: 'x'.repeat(bytes),
});

describe('traders.definition is bounded in the database (traders_definition_size)', () => {
  let db: TestDatabase;
  let userId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    userId = await db.createUser('elite');
  });
  afterAll(async () => {
    await db?.drop();
  });

  const insert = (def: unknown) =>
    db.pool.query('insert into public.traders (user_id, name, definition) values ($1, $2, $3)', [userId, 't', def]);

  test('a 2 MB definition is refused, a 60 KB one is stored', async () => {
    await expect(insert(definition(2 * 1024 * 1024))).rejects.toMatchObject({
      code: '23514', // check_violation
      constraint: 'traders_definition_size',
    });
    await expect(insert(definition(60 * 1024))).resolves.toMatchObject({ rowCount: 1 });
    await expect(insert(definition(64 * 1024))).rejects.toMatchObject({ constraint: 'traders_definition_size' });
  });

  test('the migration can run again (the constraint is added only when missing)', async () => {
    const sql = readFileSync(join(migrationsDir, '20261201120000_trader_limits.sql'), 'utf8');
    await db.pool.query(sql);
    const { rows } = await db.pool.query(
      `select count(*)::int as n from pg_constraint where conname = 'traders_definition_size'`,
    );
    expect(rows[0]).toEqual({ n: 1 });
  });
});
