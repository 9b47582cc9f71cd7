import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../test/pg';
import { startPgliteProcess } from '../test/pglite';
import { sleep } from '../test/kit/wait';
import { migrate } from './migrate';
import { createPostgresStore } from './postgres';

// The limits every API replica shares (supabase/migrations/20261202000000_api_limits.sql), on real Postgres.

describe('shared API limits: rate counters and stream leases', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  test('a rate counter counts concurrent hits atomically: exactly max are allowed', async () => {
    const key = `k-${randomUUID()}`;
    const hits = await Promise.all(
      Array.from({ length: 25 }, () => db.store.rateHit({ key, windowMs: 60_000, max: 10 })),
    );
    expect(hits.filter((h) => h.allowed)).toHaveLength(10);
    expect(hits.filter((h) => !h.allowed).every((h) => h.remaining === 0)).toBe(true);
    expect(hits.map((h) => h.remaining).sort((a, b) => a - b)).toEqual([
      ...Array<number>(16).fill(0),
      ...Array.from({ length: 9 }, (_, i) => i + 1),
    ]);
    // One window for all of them, about a minute from now.
    const resets = new Set(hits.map((h) => h.resetAt.getTime()));
    expect(resets.size).toBe(1);
    expect([...resets][0]! - Date.now()).toBeGreaterThan(55_000);
    // A refused flood does not grow the count past max + 1.
    const { rows } = await db.pool.query('select hits from api_rate_counters where key = $1', [key]);
    expect(rows[0].hits).toBe(11);
  });

  test('a window rolls over once it has ended; keys are independent', async () => {
    const key = `k-${randomUUID()}`;
    const first = await db.store.rateHit({ key, windowMs: 300, max: 1 });
    expect(first).toMatchObject({ allowed: true, remaining: 0 });
    expect((await db.store.rateHit({ key, windowMs: 300, max: 1 })).allowed).toBe(false);
    expect((await db.store.rateHit({ key: `${key}-other`, windowMs: 300, max: 1 })).allowed).toBe(true);
    await sleep(first.resetAt.getTime() - Date.now() + 50);
    const next = await db.store.rateHit({ key, windowMs: 300, max: 1 });
    expect(next.allowed).toBe(true);
    expect(next.resetAt.getTime()).toBeGreaterThan(first.resetAt.getTime());
  });

  test('bad arguments are refused, not counted', async () => {
    await expect(db.store.rateHit({ key: 'k', windowMs: 0, max: 1 })).rejects.toThrow(/api_rate_hit/);
    await expect(
      db.store.acquireStreamLease({ userId: randomUUID(), leaseId: 'l', max: 0, ttlMs: 1000 }),
    ).rejects.toThrow(/stream_lease_acquire/);
  });

  test('stream leases: at most max live per user, even when acquired concurrently', async () => {
    const userId = randomUUID();
    const ids = Array.from({ length: 8 }, () => randomUUID());
    const outcomes = await Promise.all(
      ids.map((leaseId) => db.store.acquireStreamLease({ userId, leaseId, max: 3, ttlMs: 60_000 })),
    );
    expect(outcomes.filter((o) => o.acquired)).toHaveLength(3);
    expect(outcomes.filter((o) => !o.acquired).every((o) => o.active === 3)).toBe(true);
    // Another user has their own cap.
    expect(
      await db.store.acquireStreamLease({ userId: randomUUID(), leaseId: randomUUID(), max: 3, ttlMs: 60_000 }),
    ).toEqual({ acquired: true, active: 1 });
    // Acquiring a held lease again renews it (a retry), it does not take a second place.
    const held = ids[outcomes.findIndex((o) => o.acquired)]!;
    expect(await db.store.acquireStreamLease({ userId, leaseId: held, max: 3, ttlMs: 60_000 })).toEqual({
      acquired: true,
      active: 3,
    });
    // Releasing frees a place, once.
    expect(await db.store.releaseStreamLease(held)).toBe(true);
    expect(await db.store.releaseStreamLease(held)).toBe(false);
    expect(await db.store.acquireStreamLease({ userId, leaseId: randomUUID(), max: 3, ttlMs: 60_000 })).toEqual({
      acquired: true,
      active: 3,
    });
  });

  test('an expired lease does not count and cannot be renewed; a live one is extended', async () => {
    const userId = randomUUID();
    const [short, long] = [randomUUID(), randomUUID()];
    expect((await db.store.acquireStreamLease({ userId, leaseId: short, max: 2, ttlMs: 300 })).acquired).toBe(true);
    expect((await db.store.acquireStreamLease({ userId, leaseId: long, max: 2, ttlMs: 300 })).acquired).toBe(true);
    expect((await db.store.acquireStreamLease({ userId, leaseId: randomUUID(), max: 2, ttlMs: 300 })).acquired).toBe(
      false,
    );
    expect(await db.store.renewStreamLease({ leaseId: long, ttlMs: 60_000 })).toBe(true);
    await sleep(450);
    expect(await db.store.renewStreamLease({ leaseId: short, ttlMs: 60_000 })).toBe(false);
    expect(await db.store.acquireStreamLease({ userId, leaseId: randomUUID(), max: 2, ttlMs: 60_000 })).toEqual({
      acquired: true,
      active: 2,
    });
    // The expired one was pruned on the way.
    const { rows } = await db.pool.query('select lease_id from api_stream_leases where user_id = $1', [userId]);
    expect(rows.map((r: { lease_id: string }) => r.lease_id)).not.toContain(short);
  });

  test('only the service role: anon and authenticated can neither call the functions nor read the tables', async () => {
    const as = async (role: string, sql: string) => {
      const client: pg.PoolClient = await db.pool.connect();
      try {
        await client.query('begin');
        await client.query(`select set_config('role', $1, true)`, [role]);
        return await client.query(sql);
      } finally {
        await client.query('rollback');
        client.release();
      }
    };
    for (const role of ['anon', 'authenticated']) {
      for (const sql of [
        `select * from api_rate_hit('x', 1000, 1)`,
        `select * from stream_lease_acquire('${randomUUID()}', 'l', 1, 1000)`,
        `select stream_lease_renew('l', 1000)`,
        `select stream_lease_release('l')`,
        'select * from api_rate_counters',
        'select * from api_stream_leases',
      ])
        await expect(as(role, sql)).rejects.toThrow(/permission denied/);
    }
    const ok = await as('service_role', `select * from api_rate_hit('svc-${randomUUID()}', 1000, 1)`);
    expect(ok.rows[0]).toMatchObject({ allowed: true, remaining: 0 });
    const { rows } = await db.pool.query(
      `select relname, relrowsecurity from pg_class where relname in ('api_rate_counters', 'api_stream_leases')`,
    );
    expect(rows).toHaveLength(2);
    expect(rows.every((r: { relrowsecurity: boolean }) => r.relrowsecurity)).toBe(true);
  });

  test('the same functions work on PGlite (the embedded default of npm start)', async () => {
    const pglite = await startPgliteProcess();
    const store = createPostgresStore({ connectionString: pglite.url, max: 2 });
    try {
      const client = await store.pool.connect();
      await migrate(client).finally(() => client.release());
      expect(await store.rateHit({ key: 'k', windowMs: 60_000, max: 1 })).toMatchObject({ allowed: true });
      expect(await store.rateHit({ key: 'k', windowMs: 60_000, max: 1 })).toMatchObject({ allowed: false });
      const userId = randomUUID();
      const lease = { userId, max: 1, ttlMs: 60_000 };
      expect(await store.acquireStreamLease({ ...lease, leaseId: 'a' })).toEqual({ acquired: true, active: 1 });
      expect(await store.acquireStreamLease({ ...lease, leaseId: 'b' })).toEqual({ acquired: false, active: 1 });
      expect(await store.renewStreamLease({ leaseId: 'a', ttlMs: 60_000 })).toBe(true);
      expect(await store.releaseStreamLease('a')).toBe(true);
      expect(await store.acquireStreamLease({ ...lease, leaseId: 'b' })).toEqual({ acquired: true, active: 1 });
    } finally {
      await store.close();
      await pglite.stop();
    }
  });
});
