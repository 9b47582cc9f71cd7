import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createApp } from '../api/app';
import { loadApiConfig } from '../api/config';
import { signWebhook } from '../api/webhooks';
import { mintAccessToken } from '../api/auth';
import { createFlyClient } from '../activities/fly/client';
import { freePort } from '../common/postgres-cluster';
import { isListening } from '../dev/stack/processes';
import { createPostgresStore } from '../store/postgres';
import { TEST_FLY_TOKEN, TEST_JWT_SECRET } from '../test/machine-stack';
import { createTestDatabase } from '../test/pg';
import { connectToTestServer, uniqueId } from '../test/temporal';
import { workerEnvShape } from '../worker/config';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { machineWorkflowId } from '../workflows/contract';
import { quietBundler, runBenchmark } from './lib/infra';
import { envList, median, report, round, sleep, type Row } from './lib/report';

const WEBHOOK_SECRET = 'whsec-bench-secret-0123456789';
/** A machine that is only a process: `sleep` costs ~1 MB, so a thousand of them fit any box. */
const LIGHT_IMAGE = 'registry.fly.io/cloud-execution-runtime:bench-sleep';

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * The whole downgrade path for real (signed webhook → API → signal → workflow → Fly stop + destroy on
 * fly-local → rows), with machines that are bare `sleep` processes: their health and credential
 * activities answer "ok" without HTTP (nothing listens in them). Everything else is the product's code.
 */
export async function runStorm(opts: { sizes: number[]; concurrency?: number; log?: (m: string) => void }) {
  const log = opts.log ?? (() => undefined);
  const server = await connectToTestServer();
  const db = await createTestDatabase();
  // The worker's own store settings (store/postgres.ts default pool), not the test harness's smaller pool.
  const store = createPostgresStore({ connectionString: db.url });
  // fly-local in its own process, as `npm start` runs it: its synchronous state file writes must not
  // stall the worker's and the API's event loop, which would measure a dev tool, not the product.
  const dataDir = mkdtempSync(join(os.tmpdir(), 'ce-bench-fly-'));
  const flyPort = await freePort();
  const flyUrl = `http://127.0.0.1:${flyPort}/v1`;
  const flyLocal = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, '../dev/fly-local/cli.ts')], {
    env: {
      ...process.env,
      FLY_API_URL: flyUrl,
      FLY_API_TOKEN: TEST_FLY_TOKEN,
      FLY_LOCAL_DATA_DIR: dataDir,
      FLY_LOCAL_IMAGES: JSON.stringify({ [LIGHT_IMAGE]: { command: 'sleep', args: ['infinity'] } }),
      FLY_LOCAL_KILL_ON_EXIT: '1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; !(await isListening('127.0.0.1', flyPort)); i++) {
    if (i > 300 || flyLocal.exitCode !== null) throw new Error('fly-local did not start');
    await sleep(100);
  }
  const fly = createFlyClient({ apiUrl: flyUrl, token: TEST_FLY_TOKEN, app: 'ce-bench' });
  const real = createActivities({
    fly,
    store,
    image: LIGHT_IMAGE,
    jwtSecret: TEST_JWT_SECRET,
    runtimeEnv: {},
    credentialTtlSeconds: 3600,
  });
  const ok = async () => ({ ok: true, checkedAt: new Date().toISOString() });
  const activities: typeof real = {
    ...real,
    waitForRuntimeHealthy: ok,
    checkRuntimeHealth: ok,
    renewMachineCredentials: async () => ({ expiresAt: new Date(Date.now() + 3600_000).toISOString() }),
  };
  const taskQueue = uniqueId('bench-storm');
  const worker = await createMachineWorker({
    connection: server.nativeConnection,
    taskQueue,
    activities,
    workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundler }),
    ...workerKnobs(),
  });
  const running = worker.run();
  const app = await createApp({
    config: loadApiConfig({
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      WEBHOOK_SECRET,
      DATABASE_URL: db.url,
      LOG_LEVEL: 'silent',
      MACHINE_RENEWAL_INTERVAL: '1 hour', // no renewal during a storm: it measures the stop path only
      API_RATE_LIMIT_MAX: '1000',
    }),
    temporal: server.client,
    store: store,
    fly: fly,
    taskQueue,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const concurrency = opts.concurrency ?? 50;

  const countByStatus = async (users: string[]) => {
    const { rows } = await db.pool.query<{ status: string; n: string }>(
      'select status, count(*) as n from public.cloud_machines where user_id = any($1::uuid[]) group by status',
      [users],
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Record<string, number>;
  };
  const waitAll = async (users: string[], status: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = await countByStatus(users);
      if ((c[status] ?? 0) === users.length) return;
      if (c.error) throw new Error(`${c.error} machines went to error`);
      if (Date.now() > deadline) throw new Error(`not all ${status} after ${timeoutMs} ms: ${JSON.stringify(c)}`);
      await sleep(50);
    }
  };

  const rows: Row[] = [];
  try {
    for (const n of opts.sizes) {
      const users = await Promise.all(Array.from({ length: n }, () => db.createUser('elite')));
      const t0 = performance.now();
      await pool(users, concurrency, async (userId) => {
        const token = await mintAccessToken({ jwtSecret: TEST_JWT_SECRET, userId });
        const res = await fetch(`${url}/v1/machines`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        });
        if (res.status !== 202) throw new Error(`provision answered ${res.status}: ${await res.text()}`);
      });
      await waitAll(users, 'running', 60_000 + n * 500);
      const provisionS = (performance.now() - t0) / 1000;
      log(`storm N=${n}: ${n} machines running after ${provisionS.toFixed(1)} s`);

      // The billing system's side: the tier changes, then a signed webhook per user.
      await db.pool.query(`update public.profiles set subscription_tier = 'free' where id = any($1::uuid[])`, [users]);
      const occurredAt = new Date().toISOString();
      const cpu0 = cpuByCommand();
      const s0 = performance.now();
      await pool(users, concurrency, async (userId) => {
        const body = JSON.stringify({ id: uniqueId('evt'), type: 'tier.changed', userId, tier: 'free', occurredAt });
        const res = await fetch(`${url}/v1/webhooks/billing`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-signature': signWebhook(WEBHOOK_SECRET, body) },
          body,
        });
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      });
      const acceptedS = (performance.now() - s0) / 1000;
      await waitAll(users, 'stopped', 60_000 + n * 1000);
      const stoppedS = (performance.now() - s0) / 1000;
      const cpu1 = cpuByCommand();
      log(`storm N=${n}: CPU seconds during the storm: ${cpuDelta(cpu0, cpu1)}`);
      const used = (pick: (name: string) => boolean) =>
        [...cpu1.entries()].filter(([k]) => pick(k)).reduce((sum, [k, v]) => sum + v - (cpu0.get(k) ?? 0), 0);
      const live = (await fly.listMachines({})).filter((m) => m.state !== 'destroyed').length;
      const where = await profile(server.client, users);
      rows.push({
        N: n,
        'webhooks accepted (s)': round(acceptedS, 2),
        'all rows stopped (s)': round(stoppedS, 2),
        'stops / s': round(n / stoppedS, 1),
        'live Fly machines after': live,
        'provisioning N first (s, untimed setup)': round(provisionS, 1),
        'load avg 1 min': round(os.loadavg()[0]!, 2),
        'CPU s: Temporal dev server': round(
          used((k) => k === 'temporal'),
          1,
        ),
        'CPU s: API + worker (this process)': round(
          used((k) => k.startsWith('bench:')),
          1,
        ),
        'CPU s: fly-local': round(
          used((k) => k === 'node'),
          1,
        ),
        ...where,
      });
      log(`storm N=${n}: all stopped ${stoppedS.toFixed(2)} s after the first webhook`);
    }
  } finally {
    await app.close();
    worker.shutdown();
    await running;
    flyLocal.kill('SIGTERM');
    await new Promise((r) => (flyLocal.exitCode !== null ? r(null) : flyLocal.once('exit', r)));
    await store.close();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
    await server.close();
  }
  return rows;
}

/** CPU seconds (user + system) used so far by this process and each of its descendants, summed by command name. */
function cpuByCommand(): Map<string, number> {
  const tick = 100; // USER_HZ on Linux
  const procs: { pid: number; ppid: number; comm: string; cpu: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      procs.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf('(') + 1, close),
        cpu: (Number(fields[11]) + Number(fields[12])) / tick,
      });
    } catch {
      // gone meanwhile
    }
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (mine.has(p.pid) || !mine.has(p.ppid)) continue;
      mine.add(p.pid);
      grew = true;
    }
  }
  const out = new Map<string, number>();
  for (const p of procs) {
    if (!mine.has(p.pid) || p.pid === process.pid) continue;
    out.set(p.comm, (out.get(p.comm) ?? 0) + p.cpu);
  }
  // This process (API, worker, the benchmark's own HTTP client) by thread: main, workflow thread, Rust core, libuv.
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      const name = `bench:${Number(tid) === process.pid ? 'main' : stat.slice(stat.indexOf('(') + 1, close)}`;
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / tick);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function cpuDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after.entries()]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

/** The worker's own tuning variables (worker/config.ts), so a run can compare settings: unset means the defaults. */
function workerKnobs() {
  const env = process.env;
  return {
    ...(env.WORKER_MAX_CACHED_WORKFLOWS
      ? { maxCachedWorkflows: workerEnvShape.WORKER_MAX_CACHED_WORKFLOWS.parse(env.WORKER_MAX_CACHED_WORKFLOWS) }
      : {}),
    ...(env.WORKER_MAX_CONCURRENT_ACTIVITIES
      ? {
          maxConcurrentActivityTaskExecutions: workerEnvShape.WORKER_MAX_CONCURRENT_ACTIVITIES.parse(
            env.WORKER_MAX_CONCURRENT_ACTIVITIES,
          ),
        }
      : {}),
    ...(env.WORKER_STICKY_QUEUE_TIMEOUT
      ? {
          stickyQueueScheduleToStartTimeout: workerEnvShape.WORKER_STICKY_QUEUE_TIMEOUT.parse(
            env.WORKER_STICKY_QUEUE_TIMEOUT,
          ),
        }
      : {}),
  };
}

const ms = (t: unknown) => {
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number } | null | undefined;
  const sec = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
  return sec * 1000 + (ts?.nanos ?? 0) / 1e6;
};

/**
 * Where a stop's time goes, from the histories of a sample of the storm's workflows (medians, ms):
 * waiting in the task queue for a worker slot vs running, for workflow tasks and activities alike.
 */
async function profile(client: Client, users: string[]): Promise<Row> {
  const sample = users.filter((_, i) => i % Math.max(1, Math.floor(users.length / 15)) === 0).slice(0, 15);
  const queued: number[] = [];
  const wftQueued: number[] = [];
  const ran: Record<string, number[]> = {};
  const signalToClosed: number[] = [];
  const eventsAfter: number[] = [];
  const localAfter: number[] = [];
  let wftTimeouts = 0;
  for (const userId of sample) {
    const history = await client.workflow.getHandle(machineWorkflowId(userId)).fetchHistory();
    const events = history.events ?? [];
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    const signal = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'tierChanged');
    if (!signal) continue;
    const t0 = ms(signal.eventTime);
    signalToClosed.push(ms(events[events.length - 1]!.eventTime) - t0);
    const after = events.filter((e) => Number(e.eventId) > Number(signal.eventId));
    eventsAfter.push(after.length);
    // Row writes are local activities: they run inside a workflow task and leave only a marker.
    localAfter.push(after.filter((e) => e.markerRecordedEventAttributes).length);
    // A workflow task left on the worker's sticky queue past its schedule-to-start timeout goes back to the
    // normal queue, and the worker then gets (and the server reads) the whole history: overload feeding itself.
    wftTimeouts += events.filter(
      (e) => Number(e.eventId) > Number(signal.eventId) && e.workflowTaskTimedOutEventAttributes,
    ).length;
    for (const e of events) {
      if (ms(e.eventTime) < t0) continue;
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const sched = byId.get(Number(started.scheduledEventId));
        queued.push(ms(e.eventTime) - ms(sched?.eventTime));
      }
      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        const sched = byId.get(Number(done.scheduledEventId));
        const name = sched?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        (ran[name] ??= []).push(ms(e.eventTime) - ms(byId.get(Number(done.startedEventId))?.eventTime));
      }
      const wft = e.workflowTaskStartedEventAttributes;
      if (wft) wftQueued.push(ms(e.eventTime) - ms(byId.get(Number(e.eventId) - 1)?.eventTime));
    }
  }
  return {
    'p50 signal→closed (ms)': round(median(signalToClosed), 0),
    'p50 history events after the signal': round(median(eventsAfter), 0),
    'workflow task timeouts in the sample': wftTimeouts,
    'p50 activity queued (ms)': round(median(queued), 0),
    'p50 workflow task queued (ms)': round(median(wftQueued), 0),
    'p50 destroyFlyMachines ran (ms)': round(median(ran.destroyFlyMachines ?? []), 0),
    'p50 local activities (row writes) after the signal': round(median(localAfter), 0),
  };
}

runBenchmark(module, {}, async (startLoad) => {
  const sizes = process.env.BENCH_N ? [Number(process.env.BENCH_N)] : envList('BENCH_SIZES', [100, 300, 1000]);
  const rows = await runStorm({ sizes, log: (m) => console.log(m) });
  const knobs = Object.entries(workerKnobs())
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
  const last = rows[rows.length - 1]!;
  const n = Number(last.N);
  const t = Number(last['all rows stopped (s)']);
  const at1000 = n === 1000 ? t : (t * 1000) / n;
  report('storm', {
    title: 'storm: N downgrade webhooks → every machine stopped',
    startLoad,
    tables: [{ rows }],
    notes: [
      `Target ≤ 10 s for 1,000: ${at1000 <= 10 ? 'met' : 'MISSED'} (${n === 1000 ? 'measured' : 'linear extrapolation from N=' + n}: ${round(at1000, 1)} s).`,
      `Real API (signature check, signal, webhook_events row) and worker (${knobs ? `set: ${knobs}` : 'default settings'}; the defaults are maxConcurrentActivityTaskExecutions 200 and stickyQueueScheduleToStartTimeout 10 seconds; store pool 10) in this process; Temporal dev server (in-memory SQLite unless BENCH_TEMPORAL_DB=file), Postgres and fly-local (CLI, journal persistence) in their own processes. Machines are \`sleep\` processes; their health/credential activities answer ok without HTTP.`,
      'Clock starts at the first webhook and stops when the last cloud_machines row says stopped (polled every 50 ms). Webhooks are sent 50 at a time.',
      'CPU s: user + system CPU used during the timed window (from /proc) by the dev server, by this process (API, worker and the benchmark client; the log line splits it by thread) and by fly-local; Postgres is not a child of this process and is not counted. History columns come from a sample of 15 workflows.',
    ],
  });
});
