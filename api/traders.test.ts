import { mintMachineAccessToken } from '../common/credentials';
import { machineAddress } from '../fly/machines';
import { untilValue } from '../test/kit/wait';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { RUNTIME_INTERNAL_PORT } from './stream';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

let api: ApiStack;
beforeAll(async () => {
  // The runtime re-reads its traders only every 5 minutes here: a change seen within seconds is the reload's.
  api = await createApiStack({ realRuntime: true, runtimeEnv: { TRADER_POLL_SECONDS: '300' } });
});
afterAll(async () => api?.close());

const definition = {
  symbols: ['BTCUSDT'],
  interval: '1m',
  filter: { all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: 30 }] },
};

async function signedIn() {
  const userId = await api.createUser('elite');
  return { userId, token: await api.token(userId) };
}

describe('traders of the signed-in user', () => {
  test('create, list, get, rename, disable, delete; the stored definition has its defaults', async () => {
    const { userId, token } = await signedIn();
    expect((await api.call('GET', '/v1/traders', { token })).json).toEqual({ traders: [], max: 50 });

    const created = await api.call('POST', '/v1/traders', { token, body: { name: 'oversold', definition } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect(created.headers.get('location')).toBe(`/v1/traders/${id}`);
    expect(created.json).toMatchObject({ name: 'oversold', enabled: true, definition: { fireOn: 'change' } });

    const listed = await api.call('GET', '/v1/traders', { token });
    expect((listed.json.traders as { id: string }[]).map((t) => t.id)).toEqual([id]);
    expect((await api.call('GET', `/v1/traders/${id}`, { token })).json).toEqual(created.json);

    const renamed = await api.call('PATCH', `/v1/traders/${id}`, { token, body: { name: 'deep oversold' } });
    expect(renamed.json).toMatchObject({ name: 'deep oversold', enabled: true, definition: created.json.definition });
    expect(Date.parse(renamed.json.updatedAt as string)).toBeGreaterThan(Date.parse(created.json.updatedAt as string));
    const disabled = await api.call('PATCH', `/v1/traders/${id}`, { token, body: { enabled: false } });
    expect(disabled.json).toMatchObject({ name: 'deep oversold', enabled: false });

    // What the machine reads (the machine-facing route, as that user) is what the API wrote.
    const asMachine = await api.stack.db.store.asUser(userId).listTraders();
    expect(asMachine.map((t) => [t.id, t.enabled])).toEqual([[id, false]]);

    expect((await api.call('DELETE', `/v1/traders/${id}`, { token })).status).toBe(204);
    expect((await api.call('GET', `/v1/traders/${id}`, { token })).status).toBe(404);
    expect((await api.call('DELETE', `/v1/traders/${id}`, { token })).status).toBe(404);
  });

  test("another user's trader is a 404 for every route (RLS), and never changes", async () => {
    const a = await signedIn();
    const b = await signedIn();
    const created = await api.call('POST', '/v1/traders', { token: a.token, body: { name: 'mine', definition } });
    const id = created.json.id as string;
    for (const [method, body] of [['GET'], ['PATCH', { enabled: false }], ['DELETE']] as const) {
      const res = await api.call(method, `/v1/traders/${id}`, { token: b.token, body });
      expect(res.status).toBe(404);
      expect(res.json.detail).toBe(`you have no trader ${id}`);
    }
    expect((await api.call('GET', '/v1/traders', { token: b.token })).json.traders).toEqual([]);
    expect((await api.call('GET', `/v1/traders/${id}`, { token: a.token })).json).toEqual(created.json);
  });

  test('invalid bodies and ids: 400 with errors that point at the field; no token: 401', async () => {
    const { token } = await signedIn();
    const badOp = { ...definition, filter: { all: [{ left: { indicator: 'rsi' }, op: '>>', right: 70 }] } };
    const cases: [string, string, unknown, string][] = [
      ['POST', '/v1/traders', { name: 'x', definition: badOp }, 'definition.filter.all.0.op'],
      ['POST', '/v1/traders', { name: 'x', definition: { ...definition, interval: '7m' } }, 'definition.interval'],
      ['POST', '/v1/traders', { definition }, 'name'],
      ['POST', '/v1/traders', { name: 'x', definition, userId: 'someone' }, '(body)'],
      ['PATCH', '/v1/traders/00000000-0000-4000-8000-000000000000', {}, '(body)'],
      ['GET', '/v1/traders/not-a-uuid', undefined, 'id'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await api.call(method, path, { token, body });
      expect({ status: res.status, type: res.headers.get('content-type') }).toEqual({
        status: 400,
        type: expect.stringContaining('application/problem+json'),
      });
      expect((res.json.errors as { path: string }[]).map((e) => e.path)).toContain(field);
    }
    expect((await api.call('GET', '/v1/traders')).status).toBe(401);
    expect((await api.call('GET', '/v1/traders', { token })).json.traders).toEqual([]);
  });

  test('at most API_MAX_TRADERS_PER_USER per user, also when the creates race: 409 past it', async () => {
    const limited = await api.startApp({ API_MAX_TRADERS_PER_USER: '2' });
    const { token } = await signedIn();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        api.call('POST', '/v1/traders', { token, base: limited.url, body: { name: `t${i}`, definition } }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409, 409]);
    expect(results.find((r) => r.status === 409)!.json.detail).toMatch(/already have 2 traders/);
    const listed = await api.call('GET', '/v1/traders', { token, base: limited.url });
    expect(listed.json).toMatchObject({ max: 2, traders: [expect.anything(), expect.anything()] });
  });
});

describe("the user's running machine picks a change up within seconds (POST /control/reload)", () => {
  test('create → the runtime runs it; disable → it stops; delete → gone', async () => {
    const { userId, token, status } = await api.runningUser();
    const machine = await api.stack.fly.getMachine(status.machineId!);
    const origin = machineAddress(machine, RUNTIME_INTERNAL_PORT).origin;
    /** The runtime's own account of its traders (health details, with a control token). */
    const runtimeTraders = async () => {
      const control = await mintMachineAccessToken({ jwtSecret: TEST_JWT_SECRET, userId, purpose: 'control' });
      const res = await fetch(`${origin}/health`, { headers: { authorization: `Bearer ${control}` } });
      return ((await res.json()) as { traders: number }).traders;
    };
    const tradersBecome = (n: number) =>
      untilValue(`the runtime to run ${n} trader(s)`, runtimeTraders, (t) => t === n, { timeoutMs: 10_000 });
    expect(await runtimeTraders()).toBe(0);

    const created = await api.call('POST', '/v1/traders', { token, body: { name: 'live', definition } });
    expect(created.status).toBe(201);
    await tradersBecome(1);

    const id = created.json.id as string;
    expect((await api.call('PATCH', `/v1/traders/${id}`, { token, body: { enabled: false } })).status).toBe(200);
    await tradersBecome(0);
    expect((await api.call('PATCH', `/v1/traders/${id}`, { token, body: { enabled: true } })).status).toBe(200);
    await tradersBecome(1);
    expect((await api.call('DELETE', `/v1/traders/${id}`, { token })).status).toBe(204);
    await tradersBecome(0);
  });
});
