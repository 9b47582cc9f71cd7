import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bundleWorkflowCode } from '@temporalio/worker';
import { exited } from '../test/kit/processes';
import { sleep, untilValue } from '../test/kit/wait';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../test/temporal';
import { workflowsPath } from '../worker/create-worker';
import { machineVanishedSignal, machineWorkflowId, type CarriedState } from '../workflows/contract';
import type { machineLifecycle } from '../workflows/machine-lifecycle';
import { medianRows, ratioRows } from './lib/compare';
import { runBenchmark } from './lib/infra';
import { pool } from './lib/pool';
import { envList, mb, report, round, type Row } from './lib/report';
import { externalTemporal, forEachTemporal, temporalKinds, type TemporalUnderTest } from './lib/temporal-under-test';
import { cpuWindow, treeCpu } from './storm-cpu';

interface Stats {
  rss: number;
  heapUsed: number;
  renewals: number;
  transitions: number;
  cached: number;
}

function startWorker(env: Record<string, string>) {
  const child = fork(resolve(__dirname, 'fleet-worker.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stats = () =>
    new Promise<Stats>((res, rej) => {
      const onExit = (code: number | null) => rej(new Error(`fleet worker exited (${code})`));
      const onMsg = (m: Stats & { type: string }) => {
        if (m.type !== 'stats') return;
        child.off('message', onMsg);
        child.off('exit', onExit);
        res(m);
      };
      child.on('message', onMsg);
      child.once('exit', onExit);
      child.send({ type: 'stats' });
    });
  const stop = async () => {
    child.send({ type: 'stop' });
    await exited(child);
  };
  return { child, stats, stop };
}

/**
 * Many machine workflows at rest on one worker. Workflows start as if continued-as-new with a running
 * machine (the `carried` input), so no provisioning and no Fly: the worker's activities are stubs
 * (lib/stub-activities.ts). The fleet is started once per size; then, per `maxCachedWorkflows`
 * setting, a fresh worker process (as after a deploy or a crash: nothing cached) takes over and a sweep
 * — a `machineVanished` signal to every workflow at once, so each renews now (entitlement, credentials,
 * health, record) — runs every workflow through it. RSS at rest is measured after that sweep, when the
 * cache holds what the setting lets it hold.
 */
export async function runFleet(opts: {
  sizes: number[];
  caches: (number | 'all')[];
  cleanup?: boolean;
  /** Which Temporal TEMPORAL_TEST_ADDRESS points at, for its CPU readings (default: as the smoke test runs). */
  temporal?: TemporalUnderTest;
  log?: (m: string) => void;
}) {
  const log = opts.log ?? (() => undefined);
  const temporal = opts.temporal ?? externalTemporal();
  const server = await connectToTestServer();
  const dir = mkdtempSync(join(os.tmpdir(), 'ce-bench-fleet-'));
  const bundlePath = join(dir, 'workflows.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger })).code);
  const rows: Row[] = [];
  const workerEnv = (taskQueue: string, cache: number) => ({
    BENCH_TASK_QUEUE: taskQueue,
    BENCH_MAX_CACHED: String(cache),
    BENCH_BUNDLE_PATH: bundlePath,
  });
  try {
    for (const size of opts.sizes) {
      const caches = [...new Set(opts.caches.map((c) => (c === 'all' ? size : c)))];
      const taskQueue = uniqueId('bench-fleet');
      const users = Array.from({ length: size }, () => randomUUID());

      // The fleet: started once, each workflow runs its first task and waits on its renewal timer.
      const starter = startWorker(workerEnv(taskQueue, Math.min(size, 1000)));
      let startS: number;
      try {
        await sleep(3000);
        const now = new Date().toISOString();
        const t0 = performance.now();
        await pool(users, 100, async (userId) => {
          const carried: CarriedState = {
            state: 'running',
            since: now,
            machineId: `m-${userId.slice(0, 8)}`,
            lastHealthyAt: now,
            lastRenewedAt: now,
            recent: [{ at: now, state: 'running', reason: 'healthy' }],
            renewals: 0,
            run: 2,
          };
          await server.client.workflow.start<typeof machineLifecycle>('machineLifecycle', {
            taskQueue,
            workflowId: machineWorkflowId(userId),
            args: [{ userId, region: 'ams', cpuPriority: 'low', settings: { renewalInterval: '1 day' }, carried }],
          });
        });
        const q = `TaskQueue = "${taskQueue}" AND MachineState = "running"`;
        await untilValue(
          `all ${size} workflows at rest`,
          async () => (await server.client.workflow.count(q)).count,
          (count) => count >= size,
          { timeoutMs: 20 * 60_000, everyMs: 500 },
        );
        startS = (performance.now() - t0) / 1000;
        log(`fleet ${size}: all at rest after ${startS.toFixed(1)} s`);
      } finally {
        await starter.stop();
      }

      for (const cache of caches) {
        const w = startWorker(workerEnv(taskQueue, cache));
        try {
          await sleep(3000);
          const idle = await w.stats();
          const cpu = cpuWindow({ ...temporal.cpu, worker: (procs) => treeCpu(procs, w.child.pid) });
          const s0 = performance.now();
          await pool(users, 100, (userId) =>
            server.client.workflow
              .getHandle(machineWorkflowId(userId))
              .signal(machineVanishedSignal, { machineId: `m-${userId.slice(0, 8)}`, reason: 'bench sweep' }),
          );
          const signalledS = (performance.now() - s0) / 1000;
          // A renewal's last step records the row: the sweep is done when every workflow has recorded one.
          await untilValue(
            `the sweep: ${size} workflows renewed`,
            () => w.stats(),
            (after) => after.transitions >= size,
            { timeoutMs: 1_800_000 - (performance.now() - s0), everyMs: 200 },
          );
          const sweepS = (performance.now() - s0) / 1000;
          const used = cpu.end();
          await sleep(3000);
          const rest = await w.stats();
          rows.push({
            workflows: size,
            maxCachedWorkflows: cache,
            'cached at rest': rest.cached,
            'worker RSS idle (MB)': mb(idle.rss),
            'worker RSS at rest (MB)': mb(rest.rss),
            'KB / cached workflow': round((rest.rss - idle.rss) / 1024 / Math.max(1, rest.cached), 0),
            'main-thread heap (MB)': mb(rest.heapUsed),
            'start, all at rest (s)': round(startS, 1),
            'sweep: signals sent (s)': round(signalledS, 1),
            'sweep: all renewed (s)': round(sweepS, 1),
            'renewals / s': round(size / sweepS, 0),
            ...Object.fromEntries(Object.entries(used).map(([k, v]) => [`sweep CPU s: ${k}`, round(v, 1)])),
            'renewals / CPU-s': round(size / Object.values(used).reduce((a, b) => a + b, 0), 0),
            'load 1 min': round(os.loadavg()[0]!, 1),
          });
          log(`fleet ${size} cache ${cache}: rest RSS ${mb(rest.rss)} MB, sweep ${sweepS.toFixed(1)} s`);
        } finally {
          await w.stop();
        }
      }
      if (opts.cleanup)
        await pool(users, 100, async (userId) => {
          await server.client.workflow.getHandle(machineWorkflowId(userId)).terminate('benchmark finished');
        });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.close();
  }
  return rows;
}

runBenchmark(module, { postgres: false, temporal: false }, async (startLoad) => {
  const sizes = envList('BENCH_SIZES', [1000, 10000]);
  const caches = process.env.BENCH_CACHE
    ? process.env.BENCH_CACHE.split(',').map((c) => (c.trim() === 'all' ? 'all' : Number(c)))
    : ([1000, 3000] as (number | 'all')[]);
  const log = (m: string) => console.log(m);
  const servers = new Map<string, string>();
  const runs = await forEachTemporal(async (temporal, run) => {
    servers.set(temporal.kind, temporal.description);
    const rows = await runFleet({ sizes, caches, temporal, log, cleanup: temporal.kind === 'external' });
    return rows.map((r) => ({ Temporal: temporal.kind, run, ...r }));
  }, log);
  const rows: Row[] = runs.flat();
  const repeated = rows.some((r) => r.run !== 1);
  const medians = repeated ? medianRows(rows, ['Temporal', 'workflows', 'maxCachedWorkflows']) : rows;
  const both = temporalKinds().length > 1 && !process.env.TEMPORAL_TEST_ADDRESS;
  const at10k = rows.filter((r) => r.workflows === 10000);
  const worst = at10k.length ? Math.max(...at10k.map((r) => Number(r['worker RSS at rest (MB)']))) : NaN;
  report('fleet', {
    title: 'fleet: live machine workflows at rest on one worker',
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
                match: ['workflows', 'maxCachedWorkflows'],
                cols: ['start, all at rest (s)', 'sweep: all renewed (s)', 'renewals / s', 'sweep CPU s: Temporal'],
              }),
            },
          ]
        : []),
    ],
    notes: [
      `Target ≤ 1.5 GB worker RSS at 10k: ${Number.isNaN(worst) ? 'not measured at 10k in this run' : worst <= 1536 ? `met (worst ${worst} MB)` : `MISSED (worst ${worst} MB)`}.`,
      'Workflows start with `carried` state (as after a continue-as-new: running machine, no provisioning); stub activities, no Fly, no database.',
      ...[...servers.entries()].map(([kind, d]) => `Temporal \`${kind}\`: ${d}.`),
      'sweep CPU s: user + system CPU during the sweep (from /proc) of Temporal (the dev server, or the server and its own Postgres) and of the worker process.',
      'Per setting, a fresh worker process takes over the fleet (nothing cached, as after a deploy or a crash); the sweep = a machineVanished signal to every workflow (100 in flight), each replays (if not cached) and renews at once: a worst case, all renewals together rather than spread over the interval. RSS at rest is measured 3 s after the sweep.',
      'RSS is the worker process: the Rust core, the main thread and the workflow thread (whose V8 heap holds the cached workflows; "main-thread heap" does not include it).',
    ],
  });
});
