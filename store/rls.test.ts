import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../test/pg';

/** Runs `sql` in a transaction as PostgREST would for a request with the given role and claims. */
async function as(
  db: TestDatabase,
  role: 'anon' | 'authenticated' | 'service_role',
  sub: string | null,
  sql: string | string[],
  params: unknown[] = [],
) {
  const client: pg.PoolClient = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('request.jwt.claims', $1, true), set_config('role', $2, true)`, [
      JSON.stringify(sub ? { sub, role } : { role }),
      role,
    ]);
    let rows: Record<string, unknown>[] = [];
    for (const statement of Array.isArray(sql) ? sql : [sql]) rows = (await client.query(statement, params)).rows;
    return rows;
  } finally {
    await client.query('rollback');
    client.release();
  }
}

const tables = [
  'profiles',
  'cloud_machines',
  'traders',
  'signals',
  'machine_events',
  'webhook_events',
  'billing_accounts',
] as const;

describe('row-level security on real Postgres', () => {
  let db: TestDatabase;
  let a: string;
  let b: string;
  let traderOfB: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    a = await db.createUser('elite');
    b = await db.createUser('elite');
    for (const user of [a, b]) {
      await db.store.recordMachineTransition({
        userId: user,
        status: 'running',
        reason: 'test',
        workflowId: `machine-${user}`,
      });
      const { rows } = await db.pool.query(
        `insert into traders (user_id, name, definition) values ($1, 'rsi', '{}') returning id`,
        [user],
      );
      const traderId = rows[0].id as string;
      if (user === b) traderOfB = traderId;
      await db.pool.query(
        `insert into signals (user_id, trader_id, symbol, interval, candle_open_at) values ($1, $2, 'BTCUSDT', '1m', now())`,
        [user, traderId],
      );
      await db.store.recordWebhookEvent({ id: randomUUID(), type: 'tier.changed', userId: user, payload: {} });
      await db.store.applyBillingEvent({
        id: randomUUID(),
        type: 'payment.failed',
        userId: user,
        occurredAt: new Date().toISOString(),
        payload: {},
        gracePeriodMs: 60_000,
      });
    }
  });
  afterAll(() => db.drop());

  test.each(tables.filter((t) => t !== 'webhook_events'))('user A reads only their own rows of %s', async (table) => {
    const owner = table === 'profiles' ? 'id' : 'user_id';
    const rows = await as(db, 'authenticated', a, `select ${owner} as owner from public.${table}`);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.owner === a)).toBe(true);
  });

  test('user A reads no billing webhook events at all', async () => {
    await expect(as(db, 'authenticated', a, 'select * from public.webhook_events')).rejects.toThrow(
      /permission denied/,
    );
  });

  test('user A cannot insert a trader or a signal for user B', async () => {
    await expect(
      as(db, 'authenticated', a, `insert into traders (user_id, name, definition) values ($1, 'x', '{}')`, [b]),
    ).rejects.toThrow(/row-level security/);
    await expect(
      as(
        db,
        'authenticated',
        a,
        `insert into signals (user_id, trader_id, symbol, interval, candle_open_at) values ($1, $2, 'ETHUSDT', '1m', now())`,
        [b, traderOfB],
      ),
    ).rejects.toThrow(/row-level security/);
    // Nor a signal of their own that points at B's trader.
    await expect(
      as(
        db,
        'authenticated',
        a,
        `insert into signals (user_id, trader_id, symbol, interval, candle_open_at) values ($1, $2, 'ETHUSDT', '1m', now())`,
        [a, traderOfB],
      ),
    ).rejects.toThrow(/row-level security/);
  });

  test('user A can manage their own traders and store their own signals', async () => {
    const rows = await as(
      db,
      'authenticated',
      a,
      [
        `insert into traders (user_id, name, definition) values ($1, 'mine', '{}')`,
        `insert into signals (user_id, trader_id, symbol, interval, candle_open_at)
         select $1, id, 'SOLUSDT', '5m', now() from traders where name = 'mine' returning user_id`,
      ],
      [a],
    );
    expect(rows).toEqual([{ user_id: a }]);
  });

  test('user A cannot change cloud_machines, their tier, or the audit trail', async () => {
    await expect(
      as(db, 'authenticated', a, `update cloud_machines set status = 'running' where user_id = $1`, [a]),
    ).rejects.toThrow(/permission denied/);
    await expect(as(db, 'authenticated', a, `delete from cloud_machines`)).rejects.toThrow(/permission denied/);
    await expect(as(db, 'authenticated', a, `update profiles set subscription_tier = 'elite'`)).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      as(db, 'authenticated', a, `insert into machine_events (user_id, to_status) values ($1, 'running')`, [a]),
    ).rejects.toThrow(/permission denied/);
    await expect(as(db, 'authenticated', a, `select record_machine_transition($1, 'running')`, [a])).rejects.toThrow(
      /permission denied/,
    );
  });

  test('user A cannot clear their own overdue payment, nor apply a billing event, nor read anyone’s billing facts', async () => {
    await expect(
      as(db, 'authenticated', a, `update billing_accounts set payment_state = 'ok', grace_ends_at = null`),
    ).rejects.toThrow(/permission denied/);
    await expect(as(db, 'authenticated', a, `delete from billing_accounts`)).rejects.toThrow(/permission denied/);
    await expect(
      as(db, 'authenticated', a, `insert into billing_accounts (user_id) values ($1)`, [randomUUID()]),
    ).rejects.toThrow(/permission denied/);
    await expect(
      as(
        db,
        'authenticated',
        a,
        `select apply_billing_event('forged', 'payment.recovered', $1, now(), null, '{}', '1 day')`,
        [a],
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(as(db, 'authenticated', a, `select billing_facts($1)`, [b])).rejects.toThrow(/permission denied/);
    // The app's tier is not theirs to stamp either.
    await expect(
      as(db, 'authenticated', a, `update profiles set subscription_tier_changed_at = now() + interval '1 year'`),
    ).rejects.toThrow(/permission denied/);
  });

  test('even with UPDATE on profiles granted (as the app might, for a display name), a user cannot change their own tier', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query('grant update on public.profiles to authenticated');
      await client.query(
        'create policy profiles_update_own_test on public.profiles for update to authenticated using (id = auth.uid())',
      );
      await client.query(
        `select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)`,
        [JSON.stringify({ sub: a, role: 'authenticated' })],
      );
      await client.query('savepoint s');
      await expect(
        client.query(`update public.profiles set subscription_tier = 'pro' where id = $1`, [a]),
      ).rejects.toThrow(/subscription_tier is not yours to change/);
      await client.query('rollback to savepoint s');
      await expect(
        client.query(
          `update public.profiles set subscription_tier_changed_at = now() + interval '1 year' where id = $1`,
          [a],
        ),
      ).rejects.toThrow(/not yours to change/);
      await client.query('rollback to savepoint s');
      // Any other column stays theirs to change under such a grant (updated_at stands in for a display name).
      await client.query(`update public.profiles set updated_at = now() where id = $1`, [a]);
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  test.each(tables)('anon reads nothing from %s', async (table) => {
    await expect(as(db, 'anon', null, `select * from public.${table}`)).rejects.toThrow(/permission denied/);
  });

  test.each(tables)('service_role reads every row of %s', async (table) => {
    const rows = await as(db, 'service_role', null, `select * from public.${table}`);
    const { rows: all } = await db.pool.query(`select * from public.${table}`);
    expect(rows.length).toBe(all.length);
    expect(rows.length).toBeGreaterThanOrEqual(2);
  });
});
