import WebSocket from 'ws';
import { createClient, type PostgrestError, type SupabaseClient } from '@supabase/supabase-js';
import {
  billingEventArgs,
  toBillingFacts,
  toMachine,
  toMachineEvent,
  toSignal,
  toTrader,
  transitionArgs,
} from './rows';
import { supabaseStripeCustomers } from './stripe-customers';
import { runtimeCheckpointColumns, toRuntimeCheckpoint } from './checkpoints';
import type {
  BillingEventOutcome,
  ServiceStore,
  SubscriptionTier,
  UserHistoryStore,
  UserStore,
  UserTraderStore,
} from './types';
import { rpcTimeline } from './timeline';
import { rpcUptimeRecords } from './uptime';

/** Same interface as the Postgres adapter, through Supabase's REST API (PostgREST) with supabase-js. */

// Server-side use: no session storage, and realtime gets the `ws` transport (Node 20 has no WebSocket).
const noSession = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: WebSocket as unknown as never },
};

class SupabaseStoreError extends Error {
  constructor(operation: string, err: PostgrestError) {
    super(`supabase ${operation} failed: ${err.message}${err.code ? ` (${err.code})` : ''}`);
    this.name = 'SupabaseStoreError';
  }
}

function check<T>(operation: string, res: { data: T; error: PostgrestError | null }): T {
  if (res.error) throw new SupabaseStoreError(operation, res.error);
  return res.data;
}

type Row = Record<string, unknown>;

/** The service side: the service-role key bypasses RLS. Only the worker and the API hold it. */
export function createSupabaseStore(opts: { url: string; serviceKey: string; fetch?: typeof fetch }): ServiceStore {
  const db: SupabaseClient = createClient(opts.url, opts.serviceKey, { ...noSession, global: { fetch: opts.fetch } });
  return {
    ...supabaseStripeCustomers(db, check),
    async getSubscriptionTier(userId) {
      const row = check(
        'profiles',
        await db.from('profiles').select('subscription_tier').eq('id', userId).maybeSingle(),
      );
      return (row?.subscription_tier as SubscriptionTier | undefined) ?? null;
    },
    async recordMachineTransition(t) {
      return toMachine(
        check(
          'record_machine_transition',
          await db.rpc('record_machine_transition', transitionArgs(t)).single(),
        ) as Row,
      );
    },
    async getMachine(userId) {
      const row = check(
        'cloud_machines',
        await db.from('cloud_machines').select('*').eq('user_id', userId).maybeSingle(),
      );
      return row ? toMachine(row) : null;
    },
    async listMachines(opts) {
      let q = db.from('cloud_machines').select('*').order('updated_at');
      if (opts?.statuses) q = q.in('status', opts.statuses);
      return (check('cloud_machines', await q) ?? []).map(toMachine);
    },
    async listMachineEvents(userId, opts) {
      const rows = check(
        'machine_events',
        await db
          .from('machine_events')
          .select('*')
          .eq('user_id', userId)
          .order('occurred_at', { ascending: false })
          .order('id', { ascending: false })
          .limit(opts?.limit ?? 50),
      );
      return (rows ?? []).map(toMachineEvent);
    },
    async recordWebhookEvent(e) {
      const first = check(
        'record_webhook_event',
        await db.rpc('record_webhook_event', { p_id: e.id, p_type: e.type, p_user_id: e.userId, p_payload: e.payload }),
      );
      return first === true;
    },
    async applyBillingEvent(e) {
      return check(
        'apply_billing_event',
        await db.rpc('apply_billing_event', billingEventArgs(e)),
      ) as BillingEventOutcome;
    },
    async getBillingFacts(userId) {
      return toBillingFacts(check('billing_facts', await db.rpc('billing_facts', { p_user_id: userId })));
    },
    async listBillingFacts(userIds) {
      const rows = check('billing_facts_many', await db.rpc('billing_facts_many', { p_user_ids: userIds })) as Row[];
      return new Map((rows ?? []).map((r) => [r.user_id as string, toBillingFacts(r.facts)]));
    },
    async rateHit({ key, windowMs, max }) {
      const r = check(
        'api_rate_hit',
        await db.rpc('api_rate_hit', { p_key: key, p_window_ms: Math.round(windowMs), p_max: max }).single(),
      ) as Row;
      return {
        allowed: r.allowed as boolean,
        remaining: r.remaining as number,
        resetAt: new Date(r.reset_at as string),
      };
    },
    async acquireStreamLease({ userId, leaseId, max, ttlMs }) {
      const r = check(
        'stream_lease_acquire',
        await db
          .rpc('stream_lease_acquire', {
            p_user_id: userId,
            p_lease_id: leaseId,
            p_max: max,
            p_ttl_ms: Math.round(ttlMs),
          })
          .single(),
      ) as Row;
      return { acquired: r.acquired as boolean, active: r.active as number };
    },
    async renewStreamLease({ leaseId, ttlMs }) {
      const live = check(
        'stream_lease_renew',
        await db.rpc('stream_lease_renew', { p_lease_id: leaseId, p_ttl_ms: Math.round(ttlMs) }),
      );
      return live === true;
    },
    timeline: (userId, q) => rpcTimeline(db, userId, q),
    uptimeRecords: (range) => rpcUptimeRecords(db, range),
    async releaseStreamLease(leaseId) {
      return check('stream_lease_release', await db.rpc('stream_lease_release', { p_lease_id: leaseId })) === true;
    },
    async close() {
      await db.removeAllChannels();
    },
  };
}

/**
 * One user's view, authenticated by that user's own JWT (the machine's minted token): PostgREST
 * verifies it and RLS confines every query to the user's rows. `anonKey` is the project's public key.
 */
export function createSupabaseUserStore(opts: {
  url: string;
  anonKey: string;
  userId: string;
  getAccessToken: () => string;
  fetch?: typeof fetch;
}): UserStore & UserTraderStore & UserHistoryStore {
  const db = createClient(opts.url, opts.anonKey, {
    ...noSession,
    accessToken: async () => opts.getAccessToken(),
    global: { fetch: opts.fetch },
  });
  return {
    userId: opts.userId,
    async listTraders(o) {
      let q = db.from('traders').select('*').order('created_at').order('id');
      if (o?.enabledOnly) q = q.eq('enabled', true);
      return (check('traders', await q) ?? []).map(toTrader);
    },
    async insertTradeSignal(s) {
      const rows = check(
        'signals',
        await db
          .from('signals')
          .upsert(
            {
              user_id: opts.userId,
              trader_id: s.traderId,
              symbol: s.symbol,
              interval: s.interval,
              candle_open_at: s.candleOpenAt.toISOString(),
              fired_at: (s.firedAt ?? new Date()).toISOString(),
              payload: s.payload,
            },
            { onConflict: 'trader_id,symbol,interval,candle_open_at', ignoreDuplicates: true },
          )
          .select(),
      );
      const row = rows?.[0];
      return row ? { inserted: true, signal: toSignal(row) } : { inserted: false, signal: null };
    },
    async listTradeSignals(o) {
      let query = db.from('signals').select('*');
      if (o?.before) {
        const at = o.before.firedAt.toISOString();
        query = query.or(`fired_at.lt.${at},and(fired_at.eq.${at},id.lt.${o.before.id})`);
      }
      if (o?.symbol) query = query.eq('symbol', o.symbol);
      if (o?.interval) query = query.eq('interval', o.interval);
      const rows = check(
        'signals',
        await query
          .order('fired_at', { ascending: false })
          .order('id', { ascending: false })
          .limit(o?.limit ?? 100),
      );
      return (rows ?? []).map(toSignal);
    },
    async getMachine() {
      const row = check('cloud_machines', await db.from('cloud_machines').select('*').limit(1).maybeSingle());
      return row ? toMachine(row) : null;
    },
    async getRuntimeCheckpoint() {
      const row = check('runtime_checkpoints', await db.from('runtime_checkpoints').select('*').limit(1).maybeSingle());
      return row ? toRuntimeCheckpoint(row as Row) : null;
    },
    async putRuntimeCheckpoint(cp) {
      check(
        'runtime_checkpoints',
        await db
          .from('runtime_checkpoints')
          .upsert(runtimeCheckpointColumns(opts.userId, cp), { onConflict: 'user_id' }),
      );
    },
    async getTrader(id) {
      const row = check('traders', await db.from('traders').select('*').eq('id', id).maybeSingle());
      return row ? toTrader(row) : null;
    },
    // Through PostgREST the count and the insert are two requests: two concurrent creates can both pass.
    async createTrader(t, { maxTraders }) {
      const counted = await db.from('traders').select('id', { count: 'exact', head: true });
      check('traders', counted);
      if ((counted.count ?? 0) >= maxTraders) return { refused: 'limit', max: maxTraders };
      const row = check(
        'traders',
        await db
          .from('traders')
          .insert({ user_id: opts.userId, name: t.name, definition: t.definition, enabled: t.enabled ?? true })
          .select()
          .single(),
      );
      return toTrader(row as Row);
    },
    async updateTrader(id, patch) {
      const changes: Row = { updated_at: new Date().toISOString() };
      if (patch.name !== undefined) changes.name = patch.name;
      if (patch.definition !== undefined) changes.definition = patch.definition;
      if (patch.enabled !== undefined) changes.enabled = patch.enabled;
      const row = check('traders', await db.from('traders').update(changes).eq('id', id).select().maybeSingle());
      return row ? toTrader(row as Row) : null;
    },
    timeline: (q) => rpcTimeline(db, opts.userId, q),
    uptimeRecords: async (range) =>
      (await rpcUptimeRecords(db, { ...range, userIds: [opts.userId] })).get(opts.userId) ?? [],
    async deleteTrader(id) {
      const rows = check('traders', await db.from('traders').delete().eq('id', id).select('id'));
      return (rows ?? []).length > 0;
    },
  };
}
