import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createFlyClient, machineAddress, type FlyClient } from '../../activities/fly/client';
import type { FlyLocal } from './fly-local';
import { freePort, parseImageRegistry, RUNTIME_IMAGE, defaultImageRegistry } from './processes';
import { loadSpecValidator } from './spec-conformance';
import {
  ECHO_IMAGE,
  EXIT0_IMAGE,
  EXIT1_IMAGE,
  TEST_APP,
  TEST_TOKEN,
  conformance,
  eventually,
  getEcho,
  processAlive,
  startTestFlyLocal,
  tempDataDir,
  testImages,
} from './test-helpers';

const spec = conformance();
const data = tempDataDir();
const opened: FlyLocal[] = [];

async function start(options: Parameters<typeof startTestFlyLocal>[0]) {
  const flyLocal = await startTestFlyLocal(options);
  opened.push(flyLocal);
  const fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_TOKEN, app: TEST_APP, fetch: spec.fetch });
  return { flyLocal, fly };
}

afterAll(async () => {
  for (const f of opened) await f.close({ killMachines: true });
  data.remove();
});

const info = (flyLocal: FlyLocal, id: string | undefined) => {
  const m = flyLocal.machines().find((x) => x.id === id);
  if (!m) throw new Error(`no machine ${id}`);
  return m;
};

async function createEcho(fly: FlyClient, extra: Record<string, unknown> = {}) {
  const m = await fly.createMachine({ config: { image: ECHO_IMAGE, ...extra } });
  await fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 10 });
  const machine = await fly.getMachine(m.id as string);
  // `started` means launched (as on Fly); wait until the process listens so signal handlers are in place.
  await getEcho(machineAddress(machine, 8080).origin);
  return machine;
}

describe('machines are processes', () => {
  let flyLocal: FlyLocal;
  let fly: FlyClient;
  beforeAll(async () => ({ flyLocal, fly } = await start({ dataDir: `${data.dir}/a` })));

  test('a machine runs detached, logs to a file, answers on its port, and is dead after delete', async () => {
    const m = await createEcho(fly);
    const echo = await getEcho(machineAddress(m, 8080).origin);
    const { pid, logFile } = info(flyLocal, m.id);
    expect(echo.pid).toBe(pid);
    expect(processAlive(pid as number)).toBe(true);
    await eventually(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('echo listening'));
    await fly.deleteMachine(m.id as string, { force: true });
    await fly.waitMachine(m.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(pid as number)).toBe(false);
  });

  test('stop sends the signal and the process exits cleanly', async () => {
    const m = await createEcho(fly);
    const { pid, logFile } = info(flyLocal, m.id);
    await fly.stopMachine(m.id as string, { signal: 'SIGTERM' });
    await fly.waitMachine(m.id as string, { state: 'stopped', timeoutSeconds: 5 });
    expect(processAlive(pid as number)).toBe(false);
    expect(readFileSync(logFile, 'utf8')).toContain('got SIGTERM');
    expect(info(flyLocal, m.id).lastExitCode).toBe(0);
  });

  test('an exit moves the machine to stopped (code 0) or failed (non-zero) under policy "no"', async () => {
    const clean = await fly.createMachine({ config: { image: EXIT0_IMAGE, restart: { policy: 'no' } } });
    const crash = await fly.createMachine({ config: { image: EXIT1_IMAGE, restart: { policy: 'no' } } });
    await fly.waitMachine(clean.id as string, { state: 'stopped', timeoutSeconds: 5 });
    await fly.waitMachine(crash.id as string, { state: 'failed', timeoutSeconds: 5 });
  });

  test('on-failure restarts a crashing machine up to max_retries; always restarts clean exits (bounded)', async () => {
    const crash = await fly.createMachine({
      config: { image: EXIT1_IMAGE, restart: { policy: 'on-failure', max_retries: 2 } },
    });
    const always = await fly.createMachine({ config: { image: EXIT0_IMAGE, restart: { policy: 'always' } } });
    await fly.waitMachine(crash.id as string, { state: 'failed', timeoutSeconds: 10 });
    expect(info(flyLocal, crash.id).restarts).toBe(2);
    await fly.waitMachine(always.id as string, { state: 'stopped', timeoutSeconds: 10 });
    expect(info(flyLocal, always.id).restarts).toBe(3); // maxRestarts default
  });

  test('a crash (admin kill) is restarted by the default on-failure policy', async () => {
    const m = await createEcho(fly);
    const before = info(flyLocal, m.id).pid;
    const res = await fetch(`${flyLocal.url.replace(/\/v1$/, '')}/admin/machines/${m.id}/kill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(res.status).toBe(204);
    await eventually(() => {
      const now = info(flyLocal, m.id);
      return now.state === 'started' && now.pid !== before;
    });
    expect((await getEcho(machineAddress(await fly.getMachine(m.id as string), 8080).origin)).id).toBe(m.id);
    await fly.deleteMachine(m.id as string, { force: true });
  });
});

describe('fly-local restarts', () => {
  test('state persists; a running machine is re-adopted; a stopped one stays stopped', async () => {
    const dataDir = `${data.dir}/restart`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const running = await createEcho(first.fly, { metadata: { user_id: 'u1' } });
    const stopped = await createEcho(first.fly);
    await first.fly.stopMachine(stopped.id as string);
    await first.fly.waitMachine(stopped.id as string, { state: 'stopped', timeoutSeconds: 5 });
    const pid = info(first.flyLocal, running.id).pid as number;
    await first.flyLocal.close(); // like a crash of fly-local: machines keep running
    expect(processAlive(pid)).toBe(true);

    const second = await start({ dataDir });
    const again = await second.fly.getMachine(running.id as string);
    expect(again).toMatchObject({ state: 'started', instance_id: running.instance_id });
    expect(info(second.flyLocal, running.id).pid).toBe(pid);
    expect((await getEcho(machineAddress(again, 8080).origin)).pid).toBe(pid);
    expect((await second.fly.getMachine(stopped.id as string)).state).toBe('stopped');
    expect((await second.fly.listMachines({ metadata: { user_id: 'u1' } })).map((m) => m.id)).toEqual([running.id]);

    // The adopted process is watched: its death applies the restart policy.
    process.kill(-pid, 'SIGKILL');
    await eventually(() => {
      const now = info(second.flyLocal, running.id);
      return now.state === 'started' && now.pid !== undefined && now.pid !== pid;
    });
    const newPid = info(second.flyLocal, running.id).pid as number;
    await second.fly.deleteMachine(running.id as string, { force: true });
    await second.fly.waitMachine(running.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(newPid)).toBe(false);
  });

  test('a process whose pid was never recorded (spawned just before a crash) is found and re-adopted', async () => {
    const dataDir = `${data.dir}/unrecorded`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const m = await createEcho(first.fly);
    const pid = info(first.flyLocal, m.id).pid as number;
    await first.flyLocal.close();
    // As if fly-local died between spawning the process and writing its pid down.
    const statePath = path.join(dataDir, 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { machines: { pid?: number; state: string }[] };
    for (const r of state.machines) {
      delete r.pid;
      r.state = 'starting';
    }
    writeFileSync(statePath, JSON.stringify(state));

    const second = await start({ dataDir });
    expect(info(second.flyLocal, m.id)).toMatchObject({ pid, state: 'started', alive: true });
    await second.fly.deleteMachine(m.id as string, { force: true });
    await second.fly.waitMachine(m.id as string, { state: 'destroyed', timeoutSeconds: 5 });
    expect(processAlive(pid)).toBe(false);
  });

  test('a machine whose process died while fly-local was down is started again', async () => {
    const dataDir = `${data.dir}/died`;
    const first = await start({ dataDir, killMachinesOnClose: false });
    const m = await createEcho(first.fly);
    const pid = info(first.flyLocal, m.id).pid as number;
    await first.flyLocal.close();
    process.kill(-pid, 'SIGKILL');
    await eventually(() => !processAlive(pid));

    const second = await start({ dataDir });
    await second.fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 5 });
    const echo = await getEcho(machineAddress(await second.fly.getMachine(m.id as string), 8080).origin);
    expect(echo.pid).not.toBe(pid);
  });
});

/** Pids of live `sleep <marker>` processes: the machines of one test, found whoever their parent is. */
function sleepPids(marker: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${marker}\0` && processAlive(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('fly-local crash safety', () => {
  test('SIGKILLed mid-burst of creates: every acknowledged machine is back, re-adopted, and no process is orphaned', async () => {
    const dataDir = `${data.dir}/sigkill`;
    const marker = String(3_000_000 + Math.floor(Math.random() * 1_000_000)); // `sleep <marker>`: findable in /proc
    const image = 'test/sleep:1';
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    // The CLI in its own process, as `npm run fly-local` runs it: a real SIGKILL, no close(), no final snapshot.
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'cli.ts')], {
      env: {
        ...process.env,
        FLY_API_URL: url,
        FLY_API_TOKEN: TEST_TOKEN,
        FLY_LOCAL_DATA_DIR: dataDir,
        FLY_LOCAL_IMAGES: JSON.stringify({ [image]: ['sleep', marker] }),
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const fly = createFlyClient({ apiUrl: url, token: TEST_TOKEN, app: TEST_APP, fetch: spec.fetch });
    try {
      await eventually(
        async () =>
          (
            await fetch(`${url.replace(/\/v1$/, '')}/admin/faults`, {
              headers: { authorization: `Bearer ${TEST_TOKEN}` },
            }).catch(() => null)
          )?.ok ?? false,
        30_000,
      );
      const acked: string[] = [];
      let burst = true;
      const creators = Array.from({ length: 16 }, async () => {
        while (burst) {
          try {
            acked.push((await fly.createMachine({ config: { image, metadata: { burst: marker } } })).id as string);
          } catch {
            return; // the kill: this request got no answer
          }
        }
      });
      await eventually(() => acked.length >= 60, 30_000);
      // Which processes ran before the kill: each must be re-adopted with its pid, not started again.
      const before = (await (
        await fetch(`${url.replace(/\/v1$/, '')}/admin/machines`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
        })
      ).json()) as {
        id: string;
        pid?: number;
        alive: boolean;
      }[];
      cli.kill('SIGKILL'); // creates still in flight
      burst = false;
      await Promise.allSettled(creators);
      await new Promise((r) => (cli.exitCode !== null || cli.signalCode !== null ? r(null) : cli.once('exit', r)));
      expect(statSync(path.join(dataDir, 'journal.ndjson')).size).toBeGreaterThan(0); // the state is in the journal

      const second = await start({
        dataDir,
        imageRegistry: { ...testImages, [image]: { command: 'sleep', args: [marker] } },
      });
      const listed = (await second.fly.listMachines({ metadata: { burst: marker } })).map((m) => m.id as string);
      expect(listed).toEqual(expect.arrayContaining(acked)); // nothing acknowledged is lost
      await eventually(() => second.flyLocal.machines().every((m) => m.state === 'started' && m.alive), 20_000);
      const now = new Map(second.flyLocal.machines().map((m) => [m.id, m.pid]));
      for (const m of before.filter((x) => x.alive && x.pid !== undefined)) expect(now.get(m.id)).toBe(m.pid);
      // Every machine process alive belongs to a machine fly-local knows: none was spawned and then forgotten.
      expect(sleepPids(marker).sort()).toEqual([...now.values()].sort());
      await second.flyLocal.close({ killMachines: true });
      await eventually(() => sleepPids(marker).length === 0);
    } finally {
      cli.kill('SIGKILL');
      for (const pid of sleepPids(marker)) process.kill(pid, 'SIGKILL');
    }
  });
});

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

test('FLY_LOCAL_IMAGES: arrays and objects; the runtime image is registered by default', () => {
  expect(parseImageRegistry('{"a:1": ["node", "x.js"], "b:1": {"command": "sh", "args": ["-c", "true"]}}')).toEqual({
    'a:1': { command: 'node', args: ['x.js'] },
    'b:1': { command: 'sh', args: ['-c', 'true'] },
  });
  expect(() => parseImageRegistry('{"a": []}')).toThrow();
  expect(defaultImageRegistry()[RUNTIME_IMAGE]).toMatchObject({
    command: 'npx',
    args: ['tsx', 'machine-runtime/main.ts'],
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
