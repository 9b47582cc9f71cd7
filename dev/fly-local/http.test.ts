import { readdirSync, statSync } from 'node:fs';
import type { FlyClient } from '../../fly/client';
import type { FlyLocal } from './fly-local';
import { loadSpecValidator } from './spec-conformance';
import { createEcho, flyLocalSuite, info } from './test-fixture';
import { TEST_APP, TEST_TOKEN, processAlive } from './test-helpers';

/** The HTTP surface: auth, errors, the Machines API's answers, the admin routes, rate limits, the spec. */

const { spec, data, start } = flyLocalSuite();

describe('HTTP surface', () => {
  let flyLocal: FlyLocal;
  let fly: FlyClient;
  let admin: string;
  beforeAll(async () => {
    ({ flyLocal, fly } = await start({ dataDir: `${data.dir}/http` }));
    admin = flyLocal.url.replace(/\/v1$/, '/admin');
  });
  const api = (method: string, path: string, token = TEST_TOKEN) =>
    spec.request(`${flyLocal.url}/apps/${TEST_APP}/machines${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  test('401 without or with a wrong token; 404 for an unknown machine', async () => {
    expect((await api('GET', '', '')).status).toBe(401);
    expect((await api('GET', '', 'wrong')).status).toBe(401);
    const res = await api('GET', '/0123456789abcd');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'machine not found' });
  });

  test('wait: 400 for a timeout over 60 s or an unknown state, 200 at once when the state holds', async () => {
    const m = await createEcho(fly);
    const wait = (q: string) => api('GET', `/${m.id}/wait?${q}`);
    expect((await wait('timeout=61')).status).toBe(400);
    expect((await wait('state=bogus')).status).toBe(400);
    const ok = await wait('state=stopped&state=started&timeout=1');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, state: 'started', version: m.instance_id });
    expect((await wait('state=settled&timeout=1')).status).toBe(200);
    await fly.deleteMachine(m.id as string, { force: true });
  });

  test('admin needs the token too; the state files are owner-only', async () => {
    for (const [method, path] of [
      ['GET', '/machines'],
      ['GET', '/faults'],
      ['PUT', '/faults'],
      ['POST', '/reset'],
    ] as const) {
      const res = await fetch(`${admin}${path}`, { method, headers: { authorization: 'Bearer wrong' } });
      expect([method, path, res.status]).toEqual([method, path, 401]);
    }
    await createEcho(fly); // something in the journal
    for (const file of readdirSync(`${data.dir}/http`).filter((f) => /\.(json|ndjson)$/.test(f)))
      expect([file, statSync(`${data.dir}/http/${file}`).mode & 0o777]).toEqual([file, 0o600]);
  });

  test('admin: faults are validated and applied, machines listed, reset clears everything', async () => {
    const bad = await fetch(`${admin}/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` },
      body: JSON.stringify({ create: { status: 200 } }),
    });
    expect(bad.status).toBe(400);
    const put = await fetch(`${admin}/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` },
      body: JSON.stringify({ list: { status: 503, times: 1 } }),
    });
    expect(put.status).toBe(204);
    expect((await api('GET', '')).status).toBe(503);
    expect((await api('GET', '')).status).toBe(200);

    const m = await createEcho(fly);
    const listed = (await (
      await fetch(`${admin}/machines`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
    ).json()) as {
      id: string;
      alive: boolean;
    }[];
    expect(listed.find((x) => x.id === m.id)?.alive).toBe(true);
    const pid = info(flyLocal, m.id).pid as number;
    expect(
      (await fetch(`${admin}/reset`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status,
    ).toBe(204);
    expect(flyLocal.machines()).toEqual([]);
    expect(processAlive(pid)).toBe(false);
  });

  test('rate limiting (an option) answers 429 after a burst of 3 per action and machine', async () => {
    const limited = await start({ dataDir: `${data.dir}/limited`, rateLimit: true });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await spec.request(`${limited.flyLocal.url}/apps/${TEST_APP}/machines/0123456789abcd/start`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([404, 404, 404, 429]);
    expect(await limited.fly.listMachines()).toEqual([]); // another action has its own bucket
  });
});

test('the spec validator catches a non-conforming answer', () => {
  const validator = loadSpecValidator();
  if (validator.skipped) {
    console.warn(`SKIPPED validator self-test: ${validator.reason}`);
    expect(validator.reason).toContain('not at');
    return;
  }
  const path = `/v1/apps/${TEST_APP}/machines/0123456789abcd`;
  expect(validator.validate({ method: 'GET', path, status: 200, body: { id: 'x', state: 'started' } })).toEqual([]);
  expect(validator.validate({ method: 'GET', path, status: 200, body: { id: 5 } })).toHaveLength(1);
  expect(validator.validate({ method: 'GET', path, status: 404, body: { message: 'x' } })).toHaveLength(1);
  expect(validator.validate({ method: 'GET', path, status: 201, body: {} })).toHaveLength(1);
  expect(
    validator.validate({
      method: 'GET',
      path: `${path}/lease`,
      status: 200,
      body: { status: 'success', data: { expires_at: 'soon' } },
    }),
  ).toHaveLength(1);
});

test('every response in this suite conforms to the official spec', () => {
  spec.assertAllConform();
});
