import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createApp } from '../api/app';
import { loadApiConfig } from '../api/config';
import { signWebhook } from '../api/webhooks';
import { mintAccessToken } from '../api/auth';
import { createFlyClient } from '../fly/client';
import { isListening } from '../dev/stack/processes';
import { createPostgresStore } from '../store/postgres';
import { TEST_FLY_TOKEN, TEST_JWT_SECRET } from '../test/machine-stack';
import { createTestDatabase } from '../test/pg';
import { exited, freePort } from '../test/kit/processes';
import { until, untilValue } from '../test/kit/wait';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../test/temporal';
import { workerEnvShape } from '../worker/config';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { medianRows, ratioRows } from './lib/compare';
import { appPostgresPid, runBenchmark } from './lib/infra';
import { pool } from './lib/pool';
import { envInt, envList, report, round, type Row } from './lib/report';
import { externalTemporal, forEachTemporal, temporalKinds, type TemporalUnderTest } from './lib/temporal-under-test';
import { cpuByCommand, cpuColumns, cpuDelta, cpuWindow, selfCpu, treeCpu } from './storm-cpu';
import { profile } from './storm-histories';

const WEBHOOK_SECRET = 'whsec-bench-secret-0123456789';
/** A machine that is only a process: `sleep` costs ~1 MB, so a thousand of them fit any box. */
const LIGHT_IMAGE = 'registry.fly.io/cloud-execution-runtime:bench-sleep';

/**
 * The whole downgrade path for real (signed webhook → API → signal → workflow → Fly stop + destroy on
 * fly-local → rows), with machines that are bare `sleep` processes: their health and credential
 * activities answer "ok" without HTTP (nothing listens in them). Everything else is the product's code.
 */
export async function runStorm(opts: {
  sizes: number[];
  concurrency?: number;
  /** Which Temporal TEMPORAL_TEST_ADDRESS points at, for its CPU readings (default: as the smoke test runs). */
  temporal?: TemporalUnderTest;
  log?: (m: string) => void;
}) {
  const log = opts.log ?? (() => undefined);
  const temporal = opts.temporal ?? externalTemporal();
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
  await until('fly-local to listen', () => isListening('127.0.0.1', flyPort), {
    timeoutMs: 30_000,
    abortIf: () => {
      if (flyLocal.exitCode !== null || flyLocal.signalCode !== null)
        throw new Error(`fly-local did not start (exit ${flyLocal.exitCode ?? flyLocal.signalCode})`);
    },
  });
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
    workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
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
  const waitAll = (users: string[], status: string, timeoutMs: number) =>
    untilValue(
      `all ${users.length} rows ${status}`,
      () => countByStatus(users),
      (c) => {
        if ((c[status] ?? 0) === users.length) return true;
        if (c.error) throw new Error(`${c.error} machines went to error`);
        return false;
      },
      { timeoutMs, everyMs: 50 },
    );

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
      const window = cpuWindow({
        ...temporal.cpu,
        'app Postgres': (procs) => treeCpu(procs, appPostgresPid()),
        'API + worker (this process)': selfCpu,
        'fly-local': (procs) => treeCpu(procs, flyLocal.pid),
      });
      const detail = cpuWindow(temporal.cpuDetail ?? {});
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
      const used = window.end();
      const usedDetail = detail.end();
      log(`storm N=${n}: CPU seconds during the storm: ${cpuDelta(cpu0, cpuByCommand())}`);
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
        ...cpuColumns(used, usedDetail, n),
        ...where,
      });
      log(`storm N=${n}: all stopped ${stoppedS.toFixed(2)} s after the first webhook`);
    }
  } finally {
    await app.close();
    worker.shutdown();
    await running;
    flyLocal.kill('SIGTERM');
    await exited(flyLocal);
    await store.close();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
    await server.close();
  }
  return rows;
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

runBenchmark(module, { temporal: false }, async (startLoad) => {
  const sizes = process.env.BENCH_N ? [Number(process.env.BENCH_N)] : envList('BENCH_SIZES', [100, 300, 1000]);
  const concurrency = envInt('BENCH_CONCURRENCY', 50);
  const log = (m: string) => console.log(m);
  const servers = new Map<string, string>();
  const runs = await forEachTemporal(async (temporal, run) => {
    servers.set(temporal.kind, temporal.description);
    const rows = await runStorm({ sizes, concurrency, temporal, log });
    return rows.map((r) => ({ Temporal: temporal.kind, run, ...r }));
  }, log);
  const rows: Row[] = runs.flat();
  const repeated = rows.some((r) => r.run !== 1);
  const medians = repeated ? medianRows(rows, ['Temporal', 'N']) : rows;
  const both = temporalKinds().length > 1 && !process.env.TEMPORAL_TEST_ADDRESS;
  const knobs = Object.entries(workerKnobs())
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
  report('storm', {
    title: 'storm: N downgrade webhooks → every machine stopped',
    startLoad,
    tables: [
      { caption: repeated ? 'each run' : undefined, rows },
      ...(repeated ? [{ caption: 'medians', rows: medians }] : []),
      ...(both
        ? [
            {
              caption: 'server / dev (of the medians)',
              rows: ratioRows(medians, {
                by: 'Temporal',
                num: 'server',
                den: 'dev',
                match: ['N'],
                cols: [
                  'all rows stopped (s)',
                  'stops / s',
                  'CPU s: Temporal',
                  'CPU s: all',
                  'stops / CPU-s (= stops/s per core)',
                ],
              }),
            },
          ]
        : []),
    ],
    notes: [
      ...[...servers.keys()].map((kind) =>
        targetNote(
          kind,
          medians.filter((r) => r.Temporal === kind),
        ),
      ),
      ...[...servers.entries()].map(([kind, d]) => `Temporal \`${kind}\`: ${d}.`),
      `Real API (signature check, signal, webhook_events row) and worker (${knobs ? `set: ${knobs}` : 'default settings'}; the defaults are maxConcurrentActivityTaskExecutions 200 and stickyQueueScheduleToStartTimeout 10 seconds; store pool 10) in this process; the product's Postgres and fly-local (CLI, journal persistence) in their own processes. Machines are \`sleep\` processes; their health/credential activities answer ok without HTTP.`,
      `Clock starts at the first webhook and stops when the last cloud_machines row says stopped (polled every 50 ms). Webhooks are sent ${concurrency} at a time.`,
      'CPU s: user + system CPU used during the timed window (from /proc) by each process tree: Temporal (the dev server, or the server and its own Postgres), the product\'s Postgres ("app Postgres"), this process (API, worker and the benchmark client; the log line splits it by thread) and fly-local. "cores for 1,000 in 10 s" = CPU-s per stop × 100 stops/s. History columns come from a sample of 15 workflows.',
    ],
  });
});

/** The target line for one Temporal: the largest size measured, extrapolated linearly to 1,000 if smaller. */
function targetNote(kind: string, rows: Row[]): string {
  const last = rows[rows.length - 1];
  if (!last) return `Target ≤ 10 s for 1,000 (${kind}): not measured.`;
  const n = Number(last.N);
  const t = Number(last['all rows stopped (s)']);
  const at1000 = n === 1000 ? t : (t * 1000) / n;
  const how = n === 1000 ? 'measured' : `linear extrapolation from N=${n}`;
  return `Target ≤ 10 s for 1,000 (${kind}): ${at1000 <= 10 ? 'met' : 'MISSED'} (${how}: ${round(at1000, 1)} s; at this box's CPU cost ${String(last['cores for 1,000 in 10 s'])} cores would do it in 10 s).`;
}
