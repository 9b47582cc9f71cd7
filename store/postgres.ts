import pg from 'pg';
import type {
  BillingEventOutcome,
  NewTradeSignal,
  RateHit,
  ServiceStore,
  SubscriptionTier,
  UserHistoryStore,
  UserStore,
  UserTraderStore,
  WebhookEventRecord,
} from './types';
import { queryTimeline } from './timeline';
import { groupUptimeRecords, UPTIME_RECORDS_SQL, uptimeArgs } from './uptime';
import {
  billingEventArgs,
  toBillingFacts,
  toMachine,
  toMachineEvent,
  toSignal,
  toTrader,
  transitionArgs,
  type Row,
} from './rows';
import { postgresStripeCustomers } from './stripe-customers';
import { runtimeCheckpointColumns, toRuntimeCheckpoint } from './checkpoints';

export interface PostgresStore extends ServiceStore {
  readonly pool: pg.Pool;
  /** A view of the database as `userId` would have it through PostgREST: role `authenticated`, RLS on. */
  asUser(userId: string): UserStore & UserTraderStore & UserHistoryStore;
}

export function createPostgresStore(
  opts: { connectionString: string; max?: number } | { pool: pg.Pool },
): PostgresStore {
  const pool =
    'pool' in opts ? opts.pool : new pg.Pool({ connectionString: opts.connectionString, max: opts.max ?? 10 });
  // An idle connection the server closes (a restart, a failover) must not crash the process: the pool
  // drops it and the next query opens a new one.
  if (!('pool' in opts)) pool.on('error', (err) => console.warn(`postgres: idle connection lost: ${err.message}`));

  const one = async <T>(sql: string, params: unknown[], map: (r: Row) => T): Promise<T | null> => {
    const { rows } = await pool.query(sql, params);
    return rows[0] ? map(rows[0] as Row) : null;
  };

  return {
    pool,
    ...postgresStripeCustomers(pool),
    async getSubscriptionTier(userId) {
      return one(
        'select subscription_tier from public.profiles where id = $1',
        [userId],
        (r) => r.subscription_tier as SubscriptionTier,
      );
    },
    async recordMachineTransition(t) {
      const a = transitionArgs(t);
      const row = await one(
        'select * from public.record_machine_transition($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)',
        Object.values(a),
        toMachine,
      );
      if (!row) throw new Error('record_machine_transition returned no row');
      return row;
    },
    async getMachine(userId) {
      return one('select * from public.cloud_machines where user_id = $1', [userId], toMachine);
    },
    async listMachines(opts) {
      const { rows } = opts?.statuses
        ? await pool.query('select * from public.cloud_machines where status = any($1) order by updated_at', [
            opts.statuses,
          ])
        : await pool.query('select * from public.cloud_machines order by updated_at');
      return rows.map(toMachine);
    },
    async listMachineEvents(userId, opts) {
      const { rows } = await pool.query(
        'select * from public.machine_events where user_id = $1 order by occurred_at desc, id desc limit $2',
        [userId, opts?.limit ?? 50],
      );
      return rows.map(toMachineEvent);
    },
    async recordWebhookEvent(e: WebhookEventRecord) {
      const first = await one(
        'select public.record_webhook_event($1, $2, $3, $4) as first',
        [e.id, e.type, e.userId, JSON.stringify(e.payload)],
        (r) => r.first as boolean,
      );
      return first === true;
    },
    async applyBillingEvent(e) {
      const a = billingEventArgs(e);
      const result = await one(
        'select public.apply_billing_event($1, $2, $3, $4, $5, $6, $7::interval) as r',
        [a.p_id, a.p_type, a.p_user_id, a.p_occurred_at, a.p_tier, JSON.stringify(a.p_payload), a.p_grace_period],
        (r) => r.r as BillingEventOutcome,
      );
      if (!result) throw new Error('apply_billing_event returned no row');
      return result;
    },
    async getBillingFacts(userId) {
      return toBillingFacts(await one('select public.billing_facts($1) as f', [userId], (r) => r.f));
    },
    async listBillingFacts(userIds) {
      const { rows } = await pool.query('select user_id, facts from public.billing_facts_many($1::uuid[])', [userIds]);
      return new Map(rows.map((r: Row) => [r.user_id as string, toBillingFacts(r.facts)]));
    },
    async rateHit({ key, windowMs, max }) {
      const hit = await one(
        'select allowed, remaining, reset_at from public.api_rate_hit($1, $2, $3)',
        [key, Math.round(windowMs), max],
        (r): RateHit => ({
          allowed: r.allowed as boolean,
          remaining: r.remaining as number,
          resetAt: new Date(r.reset_at as Date | string),
        }),
      );
      if (!hit) throw new Error('api_rate_hit returned no row');
      return hit;
    },
    async acquireStreamLease({ userId, leaseId, max, ttlMs }) {
      const outcome = await one(
        'select acquired, active from public.stream_lease_acquire($1, $2, $3, $4)',
        [userId, leaseId, max, Math.round(ttlMs)],
        (r) => ({ acquired: r.acquired as boolean, active: r.active as number }),
      );
      if (!outcome) throw new Error('stream_lease_acquire returned no row');
      return outcome;
    },
    async renewStreamLease({ leaseId, ttlMs }) {
      const live = await one(
        'select public.stream_lease_renew($1, $2) as live',
        [leaseId, Math.round(ttlMs)],
        (r) => r.live as boolean,
      );
      return live === true;
    },
    async releaseStreamLease(leaseId) {
      const was = await one('select public.stream_lease_release($1) as was', [leaseId], (r) => r.was as boolean);
      return was === true;
    },
    timeline: (userId, q) => queryTimeline(async (sql, params) => (await pool.query(sql, params)).rows, userId, q),
    async uptimeRecords(range) {
      const a = uptimeArgs(range);
      return groupUptimeRecords((await pool.query(UPTIME_RECORDS_SQL, [a.p_user_ids, a.p_from, a.p_to])).rows);
    },
    asUser(userId) {
      return createPostgresUserStore(pool, userId);
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * Acts as one user the way PostgREST does: per transaction, `set local role authenticated` and the
 * JWT claims in `request.jwt.claims`, so the database's RLS policies decide what is visible. Local
 * settings only: on PGlite all connections share one session.
 */
export function createPostgresUserStore(pool: pg.Pool, userId: string): UserStore & UserTraderStore & UserHistoryStore {
  const claims = JSON.stringify({ sub: userId, role: 'authenticated', aud: 'authenticated' });
  const asUser = async <T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(
        `select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)`,
        [claims],
      );
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined); // the original error is the one worth raising
      throw err;
    } finally {
      client.release();
    }
  };

  return {
    userId,
    listTraders: (opts) =>
      asUser(async (c) => {
        const { rows } = await c.query(
          `select * from public.traders ${opts?.enabledOnly ? 'where enabled' : ''} order by created_at, id`,
        );
        return rows.map(toTrader);
      }),
    insertTradeSignal: (s: NewTradeSignal) =>
      asUser(async (c) => {
        const { rows } = await c.query(
          `insert into public.signals (user_id, trader_id, symbol, interval, candle_open_at, fired_at, payload)
           values ($1, $2, $3, $4, $5, coalesce($6, now()), $7)
           on conflict (trader_id, symbol, interval, candle_open_at) do nothing
           returning *`,
          [userId, s.traderId, s.symbol, s.interval, s.candleOpenAt, s.firedAt ?? null, JSON.stringify(s.payload)],
        );
        return rows[0] ? { inserted: true, signal: toSignal(rows[0] as Row) } : { inserted: false, signal: null };
      }),
    listTradeSignals: (opts) =>
      asUser(async (c) => {
        const { rows } = await c.query(
          `select * from public.signals
            where ($2::timestamptz is null or (fired_at, id) < ($2, $3::uuid))
              and ($4::text is null or symbol = $4)
              and ($5::text is null or interval = $5)
            order by fired_at desc, id desc limit $1`,
          [
            opts?.limit ?? 100,
            opts?.before?.firedAt ?? null,
            opts?.before?.id ?? null,
            opts?.symbol ?? null,
            opts?.interval ?? null,
          ],
        );
        return rows.map(toSignal);
      }),
    getMachine: () =>
      asUser(async (c) => {
        const { rows } = await c.query('select * from public.cloud_machines limit 1');
        return rows[0] ? toMachine(rows[0] as Row) : null;
      }),
    getRuntimeCheckpoint: () =>
      asUser(async (c) => {
        const { rows } = await c.query('select * from public.runtime_checkpoints limit 1');
        return rows[0] ? toRuntimeCheckpoint(rows[0] as Row) : null;
      }),
    putRuntimeCheckpoint: (cp) =>
      asUser(async (c) => {
        const v = runtimeCheckpointColumns(userId, cp);
        await c.query(
          `insert into public.runtime_checkpoints (user_id, machine_id, streams, traders) values ($1, $2, $3, $4)
           on conflict (user_id) do update
             set machine_id = excluded.machine_id, streams = excluded.streams, traders = excluded.traders`,
          [v.user_id, v.machine_id, JSON.stringify(v.streams), JSON.stringify(v.traders)],
        );
      }),
    ...traderWrites(asUser, userId),
    timeline: (q) => asUser((c) => queryTimeline(async (sql, params) => (await c.query(sql, params)).rows, userId, q)),
    uptimeRecords: (range) =>
      asUser(async (c) => {
        const a = uptimeArgs({ ...range, userIds: [userId] });
        const rows = (await c.query(UPTIME_RECORDS_SQL, [a.p_user_ids, a.p_from, a.p_to])).rows;
        return groupUptimeRecords(rows).get(userId) ?? [];
      }),
  };
}

/** The user's own trader reads and writes, each one transaction as the user (RLS decides what exists). */
function traderWrites(
  asUser: <T>(work: (c: pg.PoolClient) => Promise<T>) => Promise<T>,
  userId: string,
): Omit<UserTraderStore, 'userId' | 'listTraders' | 'listTradeSignals'> {
  const first = (rows: unknown[]) => (rows[0] ? toTrader(rows[0] as Row) : null);
  return {
    getTrader: (id) =>
      asUser(async (c) => first((await c.query('select * from public.traders where id = $1', [id])).rows)),
    createTrader: (t, { maxTraders }) =>
      asUser(async (c) => {
        // One writer per user at a time (transaction-scoped), so concurrent creates cannot pass the count together.
        await c.query(`select pg_advisory_xact_lock(hashtextextended('traders:' || $1, 0))`, [userId]);
        const { rows: counted } = await c.query('select count(*)::int as n from public.traders');
        if ((counted[0] as { n: number }).n >= maxTraders) return { refused: 'limit' as const, max: maxTraders };
        const { rows } = await c.query(
          'insert into public.traders (user_id, name, definition, enabled) values ($1, $2, $3, $4) returning *',
          [userId, t.name, JSON.stringify(t.definition), t.enabled ?? true],
        );
        return first(rows)!;
      }),
    updateTrader: (id, patch) =>
      asUser(async (c) => {
        const { rows } = await c.query(
          // updated_at always moves forward, by at least a millisecond: the runtime reloads on a changed updatedAt.
          `update public.traders set
             name = coalesce($2, name),
             definition = coalesce($3::jsonb, definition),
             enabled = coalesce($4, enabled),
             updated_at = greatest(now(), updated_at + interval '1 millisecond')
           where id = $1 returning *`,
          [
            id,
            patch.name ?? null,
            patch.definition === undefined ? null : JSON.stringify(patch.definition),
            patch.enabled ?? null,
          ],
        );
        return first(rows);
      }),
    deleteTrader: (id) =>
      asUser(async (c) => ((await c.query('delete from public.traders where id = $1', [id])).rowCount ?? 0) > 0),
  };
}
