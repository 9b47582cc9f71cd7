import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSupabaseStore, createSupabaseUserStore } from './supabase';

/**
 * Not a database test: a local HTTP server stands in for Supabase's PostgREST and records the calls
 * the adapter makes, so we check their shape (paths, filters, headers, bodies). The SQL behind them
 * (RLS, the rpc functions) is tested against real Postgres in rls.test.ts and postgres.test.ts.
 */
interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

const machineRow = {
  id: 'c0ffee00-0000-4000-8000-000000000001',
  user_id: '11111111-1111-4111-8111-111111111111',
  machine_id: 'd8e7',
  fly_machine_name: 'ce-1111',
  workflow_id: 'machine-1111',
  region: 'ams',
  cpu_priority: 'normal',
  status: 'running',
  error_message: null,
  last_healthy_at: '2026-01-01T00:00:00Z',
  started_at: '2026-01-01T00:00:00Z',
  stopped_at: null,
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
};

describe('Supabase adapter (request shapes against a local PostgREST stand-in)', () => {
  let server: Server;
  let url: string;
  let seen: Seen[] = [];
  let reply: (s: Seen) => { status: number; body: unknown } = () => ({ status: 200, body: [] });

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const s: Seen = {
          method: req.method ?? '',
          path: u.pathname,
          query: u.searchParams,
          headers: req.headers,
          body: raw ? JSON.parse(raw) : undefined,
        };
        seen.push(s);
        const r = reply(s);
        res.writeHead(r.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r.body));
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));
  beforeEach(() => {
    seen = [];
  });

  test('service store: transitions go through the record_machine_transition rpc with the service key', async () => {
    reply = () => ({ status: 200, body: machineRow });
    const store = createSupabaseStore({ url, serviceKey: 'service-key-xyz' });
    const row = await store.recordMachineTransition({
      userId: machineRow.user_id,
      status: 'running',
      reason: 'healthy',
      machineId: 'd8e7',
    });
    expect(row).toMatchObject({
      userId: machineRow.user_id,
      status: 'running',
      machineId: 'd8e7',
      lastHealthyAt: new Date('2026-01-01T00:00:00Z'),
    });
    const [req] = seen;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/rest/v1/rpc/record_machine_transition');
    expect(req?.headers.apikey).toBe('service-key-xyz');
    expect(req?.headers.authorization).toBe('Bearer service-key-xyz');
    expect(req?.body).toMatchObject({
      p_user_id: machineRow.user_id,
      p_status: 'running',
      p_reason: 'healthy',
      p_machine_id: 'd8e7',
    });
  });

  test('service store: tier, machine and webhook dedupe use the documented filters', async () => {
    reply = (s) => {
      if (s.path.endsWith('/profiles')) return { status: 200, body: { subscription_tier: 'elite' } };
      if (s.path.endsWith('/rpc/record_webhook_event')) return { status: 200, body: false };
      return { status: 200, body: [machineRow] };
    };
    const store = createSupabaseStore({ url, serviceKey: 'k' });
    expect(await store.getSubscriptionTier('u1')).toBe('elite');
    expect(seen[0]?.path).toBe('/rest/v1/profiles');
    expect(seen[0]?.query.get('id')).toBe('eq.u1');
    expect(seen[0]?.query.get('select')).toBe('subscription_tier');

    expect(await store.recordWebhookEvent({ id: 'evt_1', type: 'tier.changed', userId: 'u1', payload: { a: 1 } })).toBe(
      false,
    );
    expect(seen[1]?.body).toEqual({ p_id: 'evt_1', p_type: 'tier.changed', p_user_id: 'u1', p_payload: { a: 1 } });

    await store.listMachines({ statuses: ['running', 'starting'] });
    expect(seen[2]?.path).toBe('/rest/v1/cloud_machines');
    expect(seen[2]?.query.get('status')).toBe('in.(running,starting)');
  });

  test('service store: billing events and facts go through their rpcs (one round trip each)', async () => {
    reply = (s) => {
      if (s.path.endsWith('/rpc/apply_billing_event'))
        return { status: 200, body: { outcome: 'applied', detail: 'tier elite' } };
      if (s.path.endsWith('/rpc/billing_facts_many'))
        return {
          status: 200,
          body: [{ user_id: 'u1', facts: { profileTier: 'pro', profileTierChangedAt: null, account: null } }],
        };
      return {
        status: 200,
        body: {
          profileTier: 'pro',
          profileTierChangedAt: '2026-01-01T00:00:00+00:00',
          account: {
            tier: 'elite',
            tierChangedAt: '2026-02-01T00:00:00.123456+00:00',
            paymentState: 'ok',
            overdueSince: null,
            graceEndsAt: null,
            lastPaymentEventAt: null,
          },
        },
      };
    };
    const store = createSupabaseStore({ url, serviceKey: 'k' });
    const outcome = await store.applyBillingEvent({
      id: 'evt_9',
      type: 'tier.changed',
      userId: 'u1',
      occurredAt: '2026-02-01T00:00:00+01:00',
      tier: 'elite',
      payload: { id: 'evt_9' },
      gracePeriodMs: 259_200_000,
    });
    expect(outcome).toEqual({ outcome: 'applied', detail: 'tier elite' });
    expect(seen[0]?.path).toBe('/rest/v1/rpc/apply_billing_event');
    expect(seen[0]?.body).toEqual({
      p_id: 'evt_9',
      p_type: 'tier.changed',
      p_user_id: 'u1',
      p_occurred_at: '2026-02-01T00:00:00+01:00',
      p_tier: 'elite',
      p_payload: { id: 'evt_9' },
      p_grace_period: '259200000 milliseconds',
    });

    expect(await store.getBillingFacts('u1')).toEqual({
      profileTier: 'pro',
      profileTierChangedAt: '2026-01-01T00:00:00.000Z',
      account: expect.objectContaining({ tier: 'elite', tierChangedAt: '2026-02-01T00:00:00.123Z' }),
    });
    expect(seen[1]).toMatchObject({ path: '/rest/v1/rpc/billing_facts', body: { p_user_id: 'u1' } });

    const many = await store.listBillingFacts(['u1']);
    expect(many.get('u1')).toMatchObject({ profileTier: 'pro' });
    expect(seen[2]).toMatchObject({ path: '/rest/v1/rpc/billing_facts_many', body: { p_user_ids: ['u1'] } });
  });

  test('user store: authenticates with the user token (not a service key) and inserts signals with on-conflict-ignore', async () => {
    reply = (s) => (s.method === 'POST' ? { status: 201, body: [] } : { status: 200, body: [] });
    let token = 'user-token-1';
    const store = createSupabaseUserStore({
      url,
      anonKey: 'anon-public-key',
      userId: 'u1',
      getAccessToken: () => token,
    });
    const result = await store.insertTradeSignal({
      traderId: 't1',
      symbol: 'BTCUSDT',
      interval: '5m',
      candleOpenAt: new Date('2025-01-01T00:00:00Z'),
      payload: { close: 1 },
    });
    expect(result).toEqual({ inserted: false, signal: null });
    const [req] = seen;
    expect(req?.path).toBe('/rest/v1/signals');
    expect(req?.query.get('on_conflict')).toBe('trader_id,symbol,interval,candle_open_at');
    expect(String(req?.headers.prefer)).toMatch(/resolution=ignore-duplicates/);
    expect(req?.headers.apikey).toBe('anon-public-key');
    expect(req?.headers.authorization).toBe('Bearer user-token-1');
    expect(req?.body).toMatchObject({ user_id: 'u1', trader_id: 't1', candle_open_at: '2025-01-01T00:00:00.000Z' });

    token = 'user-token-2'; // renewed credential is picked up on the next call
    await store.listTraders({ enabledOnly: true });
    expect(seen[1]?.headers.authorization).toBe('Bearer user-token-2');
    expect(seen[1]?.query.get('enabled')).toBe('eq.true');
  });

  test('a PostgREST error becomes a clear error naming the operation', async () => {
    reply = () => ({ status: 403, body: { code: '42501', message: 'permission denied for table cloud_machines' } });
    const store = createSupabaseStore({ url, serviceKey: 'k' });
    await expect(store.getMachine('u1')).rejects.toThrow(
      'supabase cloud_machines failed: permission denied for table cloud_machines (42501)',
    );
  });
});
