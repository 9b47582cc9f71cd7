import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { REPO_ROOT } from '../dev/fly-local/processes';
import {
  createMachineStack,
  liveMachinesOf,
  TEST_FLY_TOKEN,
  TEST_JWT_SECRET,
  type MachineStack,
} from '../test/machine-stack';
import { freePort, killGroup, spawnTs, spawnWorker } from '../test/kit/processes';
import { until, untilValue } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { connectToTestServer, testAddress, uniqueId } from '../test/temporal';
import { machineWorkflowId } from '../workflows/contract';
import { mintAccessToken } from './auth';
import { expectProblem } from './test-support/problem';

jest.setTimeout(240_000);

// More than one of each: two real API processes and two real workers on one Postgres, one Temporal and one
// fly-local. The per-user limits hold across the APIs because they live in Postgres (rate counters, stream
// leases) and in Temporal (one workflow id per user); a replica killed with SIGKILL leaves nothing stuck.

const RUNTIME_IMAGE = 'registry.fly.io/cloud-execution-runtime:replicas-test';
const RATE_MAX = 30;
const LEASE_TTL_MS = 4_000;

/** A child process and the tail of what it printed (for failures, and the fail-open warning). */
function watched(child: ChildProcess) {
  const lines: string[] = [];
  const keep = (chunk: Buffer) =>
    lines.push(...chunk.toString().split('\n').filter(Boolean)) > 400 && lines.splice(0, 200);
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => lines.join('\n') };
}
type Proc = ReturnType<typeof watched>;

async function call(base: string, method: string, path: string, token: string) {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** Opens a stream: `relayed` once the machine's `hello` arrives, else how the socket ended. */
async function openStream(wsBase: string, token: string) {
  const ws = new WebSocket(`${wsBase}/v1/machines/me/stream`, ['bearer', token]);
  ws.on('error', () => undefined);
  const ended = new Promise<{ code: number; reason: string; status?: number }>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve({ code: 0, reason: '', status: res.statusCode }));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  const hello = new Promise<'hello'>((resolve) =>
    ws.on('message', (data) => (JSON.parse(data.toString()) as { type: string }).type === 'hello' && resolve('hello')),
  );
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), 20_000)));
  const first = await Promise.race([hello, ended, silent]);
  clearTimeout(timer);
  if (first === 'silent') throw new Error('the stream neither relayed nor closed within 20 s');
  return first === 'hello' ? { relayed: true as const, ws, ended } : { relayed: false as const, ...first };
}

/** Opens streams until one is not refused for the user's cap (4429): the cap's place has come free. */
const streamOnceFree = (wsBase: string, token: string, what: string, timeoutMs = 10_000) =>
  untilValue(
    what,
    () => openStream(wsBase, token),
    (o) => o.relayed || o.code !== 4429,
    { timeoutMs, everyMs: 500 },
  );

describe('several API and worker replicas on one stack', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  const taskQueue = uniqueId('replicas');
  const apis: { url: string; wsUrl: string; proc: Proc; env: NodeJS.ProcessEnv }[] = [];
  const workers: Proc[] = [];
  const users: string[] = [];
  let deadDbApi: { url: string; wsUrl: string; proc: Proc };
  let machineUser: string;
  let machineToken: string;

  async function startApi(env: NodeJS.ProcessEnv) {
    const port = Number(env.PORT);
    const url = `http://127.0.0.1:${port}`;
    const proc = watched(spawnTs('api/server.ts', { env }));
    await until('the API to answer /healthz', async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok, {
      timeoutMs: 120_000,
      everyMs: 250,
      abortIf: () => {
        if (proc.child.exitCode !== null) throw new Error(`the API exited:\n${proc.output()}`);
      },
    });
    return { url, wsUrl: `ws://127.0.0.1:${port}`, proc, env };
  }
  /** What every API and worker of the test shares: Temporal (the task queue too), fly-local, the JWT secret. */
  const sharedEnv = () => ({
    TEMPORAL_ADDRESS: testAddress(),
    TEMPORAL_TASK_QUEUE: taskQueue,
    FLY_API_URL: stack.flyLocal.url,
    FLY_API_TOKEN: TEST_FLY_TOKEN,
    FLY_APP: 'ce-test',
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
  });
  const apiEnv = async (databaseUrl: string): Promise<NodeJS.ProcessEnv> => ({
    ...sharedEnv(),
    PORT: String(await freePort()),
    API_HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    API_RATE_LIMIT_MAX: String(RATE_MAX),
    API_RATE_LIMIT_WINDOW: '1 minute',
    API_STREAM_MAX_PER_USER: '1',
    API_STREAM_LEASE_TTL: `${LEASE_TTL_MS} ms`,
    API_PROVISION_COOLDOWN: '1 hour',
    MACHINE_RENEWAL_INTERVAL: '1 hour',
    MACHINE_START_DEADLINE_SECONDS: '90',
    MACHINE_HEALTH_DEADLINE_SECONDS: '90',
  });
  const workersAlive = () => {
    const dead = workers.find((w) => w.child.exitCode !== null);
    if (dead) throw new Error(`a worker exited (${dead.child.exitCode}):\n${dead.output()}`);
  };
  const user = async () => {
    const id = await stack.db.createUser('elite');
    users.push(id);
    return { id, token: await mintAccessToken({ jwtSecret: TEST_JWT_SECRET, userId: id }) };
  };

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack();
    // Machines run the real runtime (it serves /ws); without market data it idles, healthy, and still streams.
    stack.flyLocal.registerImage(RUNTIME_IMAGE, {
      command: process.execPath,
      args: ['--import', 'tsx', 'machine-runtime/main.ts'],
      cwd: REPO_ROOT,
      env: { HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    });
    const envs = [await apiEnv(stack.db.url), await apiEnv(stack.db.url)];
    const workerEnv = {
      ...sharedEnv(),
      FLY_MACHINE_IMAGE: RUNTIME_IMAGE,
      DATABASE_URL: stack.db.url,
      MACHINE_API_URL: `http://127.0.0.1:${envs[0]!.PORT}`,
      BINANCE_WS_URL: 'ws://127.0.0.1:9',
      BINANCE_REST_URL: 'http://127.0.0.1:9',
      RECONCILE_ENABLED: 'false',
      HEALTH_SWEEP_ENABLED: 'false', // no fleet-wide Schedule from a test's worker
      // Two workers on one host: no fixed ports (metrics, health).
      WORKER_METRICS_ADDRESS: 'off',
      WORKER_HEALTH_PORT: '0',
      LOG_LEVEL: 'WARN',
    };
    workers.push(watched(spawnWorker(workerEnv)), watched(spawnWorker(workerEnv)));
    // A third API whose database is down: how the limits behave when their store does not answer.
    const deadDb = `postgres://postgres@127.0.0.1:${await freePort()}/nothing_listens_here`;
    const started = await Promise.all([...envs, await apiEnv(deadDb)].map(startApi));
    apis.push(started[0]!, started[1]!);
    deadDbApi = started[2]!;
  });
  afterAll(async () => {
    const end = (id: string) => server.client.workflow.getHandle(machineWorkflowId(id)).terminate('test finished');
    await Promise.all(users.map((id) => end(id).catch(() => undefined)));
    for (const p of [...apis.map((a) => a.proc), deadDbApi?.proc, ...workers]) if (p) await killGroup(p.child);
    await stack?.close();
    await server?.close();
  });

  test('the rate limit counts across both APIs: the (max+1)th request is 429 wherever it lands', async () => {
    const { token } = await user();
    // GET /v1/traders spends the shared budget (status reads have a budget of their own).
    for (let i = 0; i < RATE_MAX; i++) {
      const res = await call(apis[i % 2]!.url, 'GET', '/v1/traders', token);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(RATE_MAX - 1 - i));
    }
    for (const api of apis) {
      const over = await call(api.url, 'GET', '/v1/traders', token);
      expectProblem(over, 429);
      expect(over.headers.get('x-ratelimit-limit')).toBe(String(RATE_MAX));
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  test('concurrent POSTs through both APIs make one workflow and one machine; a worker killed mid-provision, the other finishes', async () => {
    ({ id: machineUser, token: machineToken } = await user());
    stack.flyLocal.setFaults({ create: { bootDelayMs: 5_000 } }); // keeps it mid-provisioning for a while
    const posts = await Promise.all(
      Array.from({ length: 6 }, (_, i) => call(apis[i % 2]!.url, 'POST', '/v1/machines', machineToken)),
    );
    expect(posts.map((p) => p.status)).toEqual(Array(6).fill(202));
    expect(new Set(posts.map((p) => p.json.workflowId))).toEqual(new Set([machineWorkflowId(machineUser)]));

    const handle = server.client.workflow.getHandle(machineWorkflowId(machineUser));
    // The worker running the provisioning step (its identity is `<pid>@<host>`): kill that one.
    const pid = await until(
      'an activity of the provisioning to be running on a worker',
      async () => {
        // A heartbeating wait (a dead worker's is noticed within the heartbeat timeout), not the Fly call itself.
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const identity = pending.find(
          (a) => a.lastWorkerIdentity && /^waitFor(FlyState|RuntimeHealthy)$/.test(a.activityType?.name ?? ''),
        )?.lastWorkerIdentity;
        return identity ? Number(identity.split('@')[0]) : undefined;
      },
      { timeoutMs: 90_000, abortIf: workersAlive },
    );
    const victim = workers.find((w) => w.child.pid === pid);
    expect(victim).toBeDefined();
    await killGroup(victim!.child, 'SIGKILL');
    stack.flyLocal.setFaults({});

    const status = await untilStatus(handle, 'running on the other worker', (s) => s.state === 'running', 150_000);
    expect((await liveMachinesOf(stack.fly, machineUser)).map((m) => m.id)).toEqual([status.machineId]);
    const events = await stack.db.store.listMachineEvents(machineUser, { limit: 50 });
    expect(events.filter((e) => e.toStatus === 'provisioning')).toHaveLength(1);
  });

  test('one stream per user across both APIs: a second one is refused while the first is open, allowed after it closes', async () => {
    const first = await openStream(apis[0]!.wsUrl, machineToken);
    expect(first.relayed).toBe(true);
    expect(await openStream(apis[1]!.wsUrl, machineToken)).toMatchObject({
      relayed: false,
      code: 4429,
      reason: 'at most 1 streams per user',
    });
    if (!first.relayed) return;
    first.ws.close(1000);
    await first.ended;
    // The lease goes back as the socket closes; the other API then lets a stream in.
    const next = await streamOnceFree(apis[1]!.wsUrl, machineToken, 'a stream on the other API');
    expect(next.relayed).toBe(true);
    if (next.relayed) {
      next.ws.close(1000);
      await next.ended;
    }
  });

  test('kill -9 the API holding a stream: its lease expires within the TTL, then a stream is allowed; a replacement replica counts it', async () => {
    const held = await streamOnceFree(apis[1]!.wsUrl, machineToken, 'a stream on API 2');
    expect(held.relayed).toBe(true);
    await killGroup(apis[1]!.proc.child, 'SIGKILL');
    // The dead replica's lease still counts for a moment...
    expect(await openStream(apis[0]!.wsUrl, machineToken)).toMatchObject({ relayed: false, code: 4429 });
    // ...and no longer once its TTL has run out (nobody renews it).
    const after = await streamOnceFree(
      apis[0]!.wsUrl,
      machineToken,
      "the dead API's lease to expire",
      LEASE_TTL_MS + 10_000,
    );
    expect(after.relayed).toBe(true);
    // A replacement for API 2 (same environment) starts with nothing in memory, and still counts that stream.
    apis[1] = await startApi(apis[1]!.env);
    expect(await openStream(apis[1]!.wsUrl, machineToken)).toMatchObject({ relayed: false, code: 4429 });
    if (after.relayed) {
      after.ws.close(1000);
      await after.ended;
    }
  });

  test('the provisioning cooldown holds across both APIs', async () => {
    expect((await call(apis[1]!.url, 'POST', '/v1/machines/me/stop', machineToken)).status).toBe(202);
    const handle = server.client.workflow.getHandle(machineWorkflowId(machineUser));
    await untilValue(
      'the workflow to finish',
      async () => (await handle.describe()).status.name,
      (s) => s === 'COMPLETED',
    );
    for (const api of apis) {
      const again = await call(api.url, 'POST', '/v1/machines', machineToken);
      expectProblem(again, 429);
      expect(again.json.detail).toMatch(/^you started a machine \d+ s ago; start one again in \d+ s$/);
      expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(3000);
    }
    expect((await handle.describe()).status.name).toBe('COMPLETED'); // nothing was started
    expect(await liveMachinesOf(stack.fly, machineUser)).toEqual([]);
  });

  test('database down: the rate limit fails open (logged), a stream fails closed with 1013', async () => {
    const { token } = await user();
    for (let i = 0; i < RATE_MAX + 2; i++) {
      const res = await call(deadDbApi.url, 'GET', '/v1/machines/me', token);
      expect(res.status).toBe(500); // the status itself needs the database; the limiter never refused
    }
    expect(await openStream(deadDbApi.wsUrl, token)).toMatchObject({
      relayed: false,
      code: 1013,
      reason: 'cannot count your open streams right now: try again later',
    });
    expect(deadDbApi.proc.output()).toMatch(/shared counter did not answer; requests go through uncounted/);
  });
});
