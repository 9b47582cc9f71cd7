import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSupabaseUserStore } from './supabase';

/**
 * The runtime checkpoint through Supabase REST (what a machine uses with Supabase): a local HTTP
 * server stands in for PostgREST and records the calls, so we check their shape. The table's RLS is
 * tested on real Postgres (api/machine-checkpoint.test.ts).
 */
describe('Supabase user store: the runtime checkpoint (request shapes against a PostgREST stand-in)', () => {
  let server: Server;
  let url: string;
  const seen: { method: string; path: string; query: URLSearchParams; prefer: string; body: unknown }[] = [];
  let reply: unknown = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        seen.push({
          method: req.method ?? '',
          path: u.pathname,
          query: u.searchParams,
          prefer: String(req.headers.prefer ?? ''),
          body: raw ? JSON.parse(raw) : undefined,
        });
        res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply));
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  test('an upsert on user_id as the user (its own row under RLS), and a read of that one row', async () => {
    const store = createSupabaseUserStore({ url, anonKey: 'anon', userId: 'u1', getAccessToken: () => 'user-token' });
    await store.putRuntimeCheckpoint({ machineId: 'm1', streams: { 'BTCUSDT|1m': 60_000 }, traders: { t1: 5 } });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      path: '/rest/v1/runtime_checkpoints',
      body: { user_id: 'u1', machine_id: 'm1', streams: { 'BTCUSDT|1m': 60_000 }, traders: { t1: 5 } },
    });
    expect(seen[0]!.query.get('on_conflict')).toBe('user_id');
    expect(seen[0]!.prefer).toMatch(/resolution=merge-duplicates/);

    reply = {
      user_id: 'u1',
      machine_id: 'm1',
      streams: { 'BTCUSDT|1m': 60_000 },
      traders: {},
      updated_at: '2026-12-02T11:00:00Z',
    };
    expect(await store.getRuntimeCheckpoint()).toEqual({
      userId: 'u1',
      machineId: 'm1',
      streams: { 'BTCUSDT|1m': 60_000 },
      traders: {},
      updatedAt: new Date('2026-12-02T11:00:00Z'),
    });
    expect(seen[1]).toMatchObject({ method: 'GET', path: '/rest/v1/runtime_checkpoints' });
  });
});
