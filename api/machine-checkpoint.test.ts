import { randomUUID } from 'node:crypto';
import { deriveMachineKey } from '../common/credentials';
import { signMachineApiToken } from '../common/machine-api-token';
import { createMachineApiUserStore } from '../store/machine-api';
import type { RuntimeCheckpoint } from '../store/types';
import { createTestDatabase, type TestDatabase } from '../test/pg';
import { startMachineApiServer } from './test-support/machine-api-server';

const jwtSecret = 'checkpoint-test-jwt-secret-of-at-least-32-chars';

describe('the runtime checkpoint through the machine API (PUT/GET /v1/machine/checkpoint), RLS as the user', () => {
  let db: TestDatabase;
  let server: Awaited<ReturnType<typeof startMachineApiServer>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startMachineApiServer({ jwtSecret, userStore: (id) => db.store.asUser(id) });
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });
  const storeOf = (userId: string, keyOf = userId) =>
    createMachineApiUserStore({ apiUrl: server.url, userId, machineKey: deriveMachineKey(jwtSecret, keyOf) });

  test('a machine reads back what it wrote, replaced on every write; another user sees only its own', async () => {
    const a = await db.createUser('elite');
    const b = await db.createUser('elite');
    const mine = storeOf(a);
    expect(await mine.getRuntimeCheckpoint()).toBeNull();
    const trader = randomUUID();
    const first: RuntimeCheckpoint = {
      machineId: 'e784079b449483',
      streams: { 'BTCUSDT|1m': 1_727_949_600_000, 'ETHUSDT|5m': 1_727_949_300_000 },
      traders: { [trader]: 1_764_633_600_123 },
    };
    await mine.putRuntimeCheckpoint(first);
    const read = await mine.getRuntimeCheckpoint();
    expect(read).toMatchObject({ ...first, userId: a });
    expect(read!.updatedAt).toBeInstanceOf(Date);
    const second: RuntimeCheckpoint = { machineId: null, streams: { 'BTCUSDT|1m': 1_727_949_660_000 }, traders: {} };
    await mine.putRuntimeCheckpoint(second);
    expect(await mine.getRuntimeCheckpoint()).toMatchObject({ ...second, userId: a });
    expect(read!.updatedAt.getTime()).toBeLessThanOrEqual((await mine.getRuntimeCheckpoint())!.updatedAt.getTime());

    // B's machine: nothing of A's to read; its write is its own row; A's is untouched.
    const theirs = storeOf(b);
    expect(await theirs.getRuntimeCheckpoint()).toBeNull();
    await theirs.putRuntimeCheckpoint(first);
    expect(await mine.getRuntimeCheckpoint()).toMatchObject(second);
    const rows = await db.pool.query('select user_id from public.runtime_checkpoints order by user_id');
    expect(rows.rows.map((r: { user_id: string }) => r.user_id).sort()).toEqual([a, b].sort());
  });

  test('RLS: as user B, A’s row can be neither read nor changed', async () => {
    const a = await db.createUser('elite');
    const b = await db.createUser('elite');
    await db.store.asUser(a).putRuntimeCheckpoint({ machineId: 'm-a', streams: {}, traders: {} });
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query(
        `select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)`,
        [JSON.stringify({ sub: b, role: 'authenticated' })],
      );
      expect((await client.query('select * from public.runtime_checkpoints where user_id = $1', [a])).rowCount).toBe(0);
      const updated = await client.query(
        `update public.runtime_checkpoints set machine_id = 'forged' where user_id = $1`,
        [a],
      );
      expect(updated.rowCount).toBe(0);
      await expect(
        client.query(`insert into public.runtime_checkpoints (user_id, machine_id) values ($1, 'forged')`, [a]),
      ).rejects.toThrow(/row-level security/);
    } finally {
      await client.query('rollback');
      client.release();
    }
    expect((await db.store.asUser(a).getRuntimeCheckpoint())!.machineId).toBe('m-a');
  });

  test('a checkpoint that is not one is 400 problem+json with the path; no machine token is 401', async () => {
    const a = await db.createUser('elite');
    const put = async (body: unknown, authorization?: string) => {
      const token = authorization ?? `Bearer ${await signMachineApiToken(deriveMachineKey(jwtSecret, a), a)}`;
      const res = await fetch(`${server.url}/v1/machine/checkpoint`, {
        method: 'PUT',
        headers: { authorization: token, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return {
        status: res.status,
        type: res.headers.get('content-type'),
        json: (await res.json()) as { errors?: { path: string }[] },
      };
    };
    const ok = { machineId: null, streams: {}, traders: {} };
    const bad: [unknown, string][] = [
      [{ ...ok, streams: { btcusdt: 1 } }, 'streams.btcusdt'],
      [{ ...ok, streams: { 'BTCUSDT|1m': -1 } }, 'streams.BTCUSDT|1m'],
      [{ ...ok, traders: { 'not-a-uuid': 1 } }, 'traders.not-a-uuid'],
      [{ ...ok, userId: randomUUID() }, '(body)'],
      [{ ...ok, streams: Object.fromEntries(Array.from({ length: 2001 }, (_, i) => [`S${i}USDT|1m`, 0])) }, 'streams'],
    ];
    for (const [body, path] of bad) {
      const res = await put(body);
      expect([res.status, res.type]).toEqual([400, expect.stringMatching(/problem\+json/)]);
      expect(res.json.errors?.map((e) => e.path)).toContain(path);
    }
    expect((await put(ok, 'Bearer nope')).status).toBe(401);
    // Signed with another user's key while claiming this one: refused, nothing written.
    await expect(storeOf(a, randomUUID()).putRuntimeCheckpoint(ok)).rejects.toThrow(/HTTP 401/);
    expect(await db.store.asUser(a).getRuntimeCheckpoint()).toBeNull();
  });
});
