import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { ChildProcess } from 'node:child_process';
import { createFlyClient } from '../activities/fly/client';
import { readToolPaths } from '../common/tools';
import type { Faults, FaultSpec } from '../dev/fly-local/faults';
import type { MachineRow, ServiceStore, SubscriptionTier } from '../store/types';
import { fakeRuntimePath, TEST_FLY_TOKEN, TEST_IMAGE, TEST_JWT_SECRET } from '../test/machine-stack';
import { workflowsPath } from '../worker/create-worker';
import { machineWorkflowId, statusQuery, stopSignal, type MachineStatus } from '../workflows/contract';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { reconcileFleet, type ReconcileReport } from '../workflows/reconcile-fleet';
import { killGroup, spawnWorker, startFlyLocal, startTemporalServer } from './processes';

/*
 * Chaos trials against the real worker process, fly-local and a file-backed Temporal dev server. Each
 * trial starts operations for a few users (provision, renewal, stop), SIGKILLs the worker at a seeded
 * random moment, may restart fly-local and Temporal too, restarts the worker, and waits until every
 * user has converged; then it runs reconcileFleet (twice at once) and checks the fleet's invariants.
 */

export type ChaosOp = 'provision' | 'renewal' | 'stop';
type Disruption = 'fly-local restart' | 'temporal restart';

export interface ChaosConfig {
  seed: number;
  trials: number;
  usersPerTrial: number;
  ops: ChaosOp[];
  /** Chance per trial of each restart on top of the worker's SIGKILL. */
  flyLocalRestartChance: number;
  temporalRestartChance: number;
  /** Fly faults during the trial: 20% 5xx (some after the effect), 10% 429, slow boots; `hangs` adds lost responses. */
  faults: boolean;
  hangs: boolean;
  /** The kill lands at a random moment within this many ms after the operations start. */
  killWindowMs: number;
  convergeTimeoutMs: number;
  database: { url: string; store: ServiceStore; createUser(tier?: SubscriptionTier): Promise<string> };
  log(line: string): void;
}

export interface TrialResult {
  trial: number;
  ops: Record<ChaosOp, number>;
  disruptions: Disruption[];
  killAfterMs: number;
  converged: boolean;
  convergeMs: number | null;
  /** Users ever seen with more than one live Fly machine during the trial. */
  duplicates: number;
  /** Live machines no running workflow owns, at convergence (before reconcile) and after one reconcile. */
  orphansBefore: number;
  orphansAfter: number;
  outcomes: Record<'running' | 'stopped' | 'error', number>;
  reconcile: { destroyed: number; repaired: number; signalled: number };
  violations: string[];
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LIVE = (state: string) => state !== 'destroyed' && state !== 'destroying';
const userOfName = (name: string) => (name.startsWith('ce-') ? name.slice(3) : null);
const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface UserView {
  workflow: 'running' | 'closed';
  status: MachineStatus | null;
  closedAs?: string;
  live: { id: string; state: string }[];
  row: MachineRow | null;
}

export async function runChaos(config: ChaosConfig) {
  const { log } = config;
  const rand = seededRandom(config.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dir = mkdtempSync(join(tmpdir(), 'ce-chaos-'));
  const taskQueue = `chaos-${config.seed}`;
  log(`chaos: seed ${config.seed}, ${config.trials} trials, ${config.usersPerTrial} users each; logs in ${dir}`);

  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: silentLogger })).code);
  const temporal = await startTemporalServer({ cli: readToolPaths().temporalCli, dir });
  const flyLocal = await startFlyLocal({ dir, token: TEST_FLY_TOKEN, image: TEST_IMAGE, runtimePath: fakeRuntimePath });
  // Our own view of Fly: never through the fault injector's errors (only used with faults cleared).
  const fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_FLY_TOKEN, app: 'ce-chaos' });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const workerEnv = {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    FLY_API_URL: flyLocal.url,
    FLY_API_TOKEN: TEST_FLY_TOKEN,
    FLY_APP: 'ce-chaos',
    FLY_MACHINE_IMAGE: TEST_IMAGE,
    DATABASE_URL: config.database.url,
    // The stand-in runtime needs no store; real machines would reach the API's machine routes here.
    MACHINE_API_URL: 'http://127.0.0.1:9',
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    WORKFLOW_BUNDLE_PATH: bundlePath,
    // Reconcile runs explicitly at each trial's end, so the orphan counts measure the workflow alone.
    RECONCILE_ENABLED: 'false',
  };
  let worker: ChildProcess = spawnWorker({ dir, env: workerEnv });
  const settings = {
    renewalInterval: '3 seconds',
    startDeadlineSeconds: 20,
    healthDeadlineSeconds: 15,
    maxRestarts: 2,
  };
  const results: TrialResult[] = [];

  const startWorkflow = (userId: string) =>
    client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
    });

  async function view(userId: string): Promise<UserView> {
    const handle = client.workflow.getHandle(machineWorkflowId(userId));
    let workflow: UserView['workflow'] = 'closed';
    let status: MachineStatus | null = null;
    let closedAs: string | undefined;
    try {
      const d = await connection.withDeadline(Date.now() + 3000, () => handle.describe());
      if (d.status.name === 'RUNNING') {
        workflow = 'running';
        status = await connection.withDeadline(Date.now() + 3000, () => handle.query(statusQuery)).catch(() => null);
      } else {
        closedAs = d.status.name;
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) return { workflow: 'running', status: null, live: [], row: null };
      closedAs = 'NONE';
    }
    const live = flyLocal
      .current()
      .machines()
      .filter((m) => userOfName(m.name) === userId && LIVE(m.state))
      .map((m) => ({ id: m.id, state: m.state }));
    return { workflow, status, closedAs, live, row: await config.database.store.getMachine(userId) };
  }

  const settled = (v: UserView) => v.workflow === 'closed' || v.status?.state === 'running';

  /** Violations of the invariants for a settled user; orphans (a closed workflow's live machine) are counted apart. */
  function violations(userId: string, v: UserView, withOrphans: boolean): string[] {
    const out: string[] = [];
    const u = userId.slice(0, 8);
    if (v.live.length > 1) out.push(`${u}: ${v.live.length} live machines`);
    if (v.workflow === 'running' && v.status) {
      const [m] = v.live;
      if (v.live.length !== 1 || m!.id !== v.status.machineId || m!.state !== 'started')
        out.push(`${u}: workflow running on ${v.status.machineId}, Fly has ${JSON.stringify(v.live)}`);
      if (v.row?.status !== 'running' || v.row.machineId !== v.status.machineId)
        out.push(`${u}: workflow running on ${v.status.machineId}, row ${v.row?.status}/${v.row?.machineId}`);
    } else if (v.workflow === 'closed') {
      if (v.row && v.row.status !== 'stopped' && v.row.status !== 'error')
        out.push(`${u}: no workflow runs (${v.closedAs}), row says ${v.row.status}`);
      if (withOrphans && v.live.length > 0) out.push(`${u}: orphan machine(s) ${v.live.map((m) => m.id).join(',')}`);
    }
    return out;
  }

  function faultsFor(): Faults {
    if (!config.faults) return {};
    const f: Faults = {};
    const err = (): FaultSpec =>
      rand() < 0.67 ? { status: pick([500, 502, 503] as const), probability: 0.2 } : { status: 429, probability: 0.1 };
    for (const op of ['get', 'list', 'wait', 'start', 'stop', 'delete', 'update'] as const) f[op] = err();
    // An ambiguous create (done, then answered 503) and a slow boot: where duplicates are born.
    f.create = { status: 503, probability: 0.2, afterEffect: true, bootDelayMs: 500 + Math.floor(rand() * 3000) };
    if (config.hangs) f[pick(['get', 'list', 'wait'] as const)] = { hang: true, probability: 0.05 };
    return f;
  }

  try {
    for (let trial = 1; trial <= config.trials; trial++) {
      const ops = Array.from({ length: config.usersPerTrial }, () => pick(config.ops));
      const users = await Promise.all(ops.map(() => config.database.createUser('elite')));
      const disruptions: Disruption[] = [];
      if (rand() < config.flyLocalRestartChance) disruptions.push('fly-local restart');
      if (rand() < config.temporalRestartChance) disruptions.push('temporal restart');
      const killAfterMs = Math.floor(rand() * config.killWindowMs);
      const faults = faultsFor();

      // Renewal and stop need a running machine first (no faults yet: this part is not under test).
      await Promise.all(users.map((u, i) => (ops[i] === 'provision' ? undefined : startWorkflow(u))));
      await until(
        () =>
          Promise.all(users.map(async (u, i) => ops[i] === 'provision' || (await view(u)).status?.state === 'running')),
        90_000,
        'pre-provisioning',
      );

      let duplicates = new Set<string>();
      const sampler = setInterval(() => {
        const byUser = new Map<string, number>();
        for (const m of flyLocal.current().machines())
          if (LIVE(m.state)) byUser.set(m.name, (byUser.get(m.name) ?? 0) + 1);
        for (const [name, n] of byUser) if (n > 1) duplicates.add(name);
      }, 200);

      flyLocal.setFaults(faults);
      await Promise.all(
        users.map((u, i) =>
          ops[i] === 'provision'
            ? startWorkflow(u)
            : ops[i] === 'stop'
              ? client.workflow
                  .getHandle(machineWorkflowId(u))
                  .signal(stopSignal, { reason: 'chaos', requestedBy: 'chaos' })
              : undefined,
        ),
      );
      await sleep(killAfterMs);
      await killGroup(worker);
      if (disruptions.includes('fly-local restart')) await flyLocal.restart();
      if (disruptions.includes('temporal restart')) await temporal.restart();
      worker = spawnWorker({ dir, env: workerEnv });
      const t0 = Date.now();
      await sleep(3000); // a few more seconds under faults, on the new worker
      flyLocal.setFaults({});

      let convergeMs: number | null = null;
      let last: string[] = [];
      while (Date.now() - t0 < config.convergeTimeoutMs) {
        const views = await Promise.all(users.map(async (u) => [u, await view(u)] as const));
        last = views.flatMap(([u, v]) => (settled(v) ? violations(u, v, false) : [`${u.slice(0, 8)}: not settled`]));
        if (last.length === 0) {
          convergeMs = Date.now() - t0;
          break;
        }
        await sleep(500);
      }
      clearInterval(sampler);

      const before = await Promise.all(users.map(async (u) => [u, await view(u)] as const));
      const orphansBefore = await countOrphans();
      const reports = await Promise.all([reconcileNow(), reconcileNow()]);
      const orphansAfter = await countOrphans();
      const after = await Promise.all(users.map(async (u) => [u, await view(u)] as const));
      const outcomes = { running: 0, stopped: 0, error: 0 };
      for (const [, v] of before) {
        if (v.workflow === 'running') outcomes.running++;
        else if (v.row?.status === 'error') outcomes.error++;
        else outcomes.stopped++;
      }
      const result: TrialResult = {
        trial,
        ops: { provision: 0, renewal: 0, stop: 0, ...countBy(ops) },
        disruptions,
        killAfterMs,
        converged: convergeMs !== null,
        convergeMs,
        duplicates: duplicates.size,
        orphansBefore,
        orphansAfter,
        outcomes,
        reconcile: {
          destroyed: reports.reduce((n, r) => n + r.destroyed.length, 0),
          repaired: reports.reduce((n, r) => n + r.repaired.length, 0),
          signalled: reports.reduce((n, r) => n + r.signalled.length, 0),
        },
        violations: [
          ...(convergeMs === null ? last : []),
          ...after.flatMap(([u, v]) => (settled(v) ? violations(u, v, true) : [])),
        ],
      };
      duplicates = new Set();
      results.push(result);
      log(
        `trial ${trial}: ${ops.join(',')} | kill +${killAfterMs} ms${disruptions.length ? ` + ${disruptions.join(' + ')}` : ''} | ` +
          `${result.converged ? `converged in ${(convergeMs! / 1000).toFixed(1)} s` : 'NOT converged'} | ` +
          `dup ${result.duplicates}, orphans ${orphansBefore}→${orphansAfter} | ` +
          `running ${outcomes.running}, stopped ${outcomes.stopped}, error ${outcomes.error}` +
          (result.violations.length ? ` | ${result.violations.join('; ')}` : ''),
      );
      await cleanup(users);
    }
  } finally {
    await killGroup(worker);
    await connection.close().catch(() => undefined);
    await flyLocal.close();
    await temporal.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return summarize(config.seed, results);

  async function reconcileNow(): Promise<ReconcileReport> {
    return client.workflow.execute(reconcileFleet, {
      taskQueue,
      workflowId: `reconcile-chaos-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
      args: [{ minMachineAgeSeconds: 0 }],
      workflowExecutionTimeout: '2 minutes',
    });
  }

  /** Live machines anywhere in fly-local that no running workflow names as its machine. */
  async function countOrphans(): Promise<number> {
    let n = 0;
    for (const m of flyLocal.current().machines()) {
      if (!LIVE(m.state)) continue;
      const userId = userOfName(m.name);
      const v = userId ? await view(userId) : undefined;
      if (!v || v.workflow !== 'running' || v.status?.machineId !== m.id) n++;
    }
    return n;
  }

  /** Stops the trial's machines so processes do not pile up; a straggler is terminated and its machine destroyed. */
  async function cleanup(users: string[]) {
    await Promise.all(
      users.map(async (u) => {
        const handle = client.workflow.getHandle(machineWorkflowId(u));
        try {
          await handle.signal(stopSignal, { reason: 'chaos trial over', requestedBy: 'chaos' });
          await connection.withDeadline(Date.now() + 30_000, () => handle.result());
        } catch {
          await handle.terminate('chaos cleanup').catch(() => undefined);
          for (const m of await fly.listMachines({ metadata: { user_id: u } }))
            await fly.deleteMachine(m.id!, { force: true }).catch(() => undefined);
        }
      }),
    );
  }
}

async function until(probe: () => Promise<boolean[]>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await probe()).every(Boolean)) return;
    await sleep(300);
  }
  throw new Error(`chaos: timed out waiting for ${what}`);
}

function countBy<T extends string>(xs: T[]): Partial<Record<T, number>> {
  const out: Partial<Record<T, number>> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

const silentLogger = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} };

export interface ChaosSummary {
  seed: number;
  trials: number;
  converged: number;
  duplicates: number;
  orphansBefore: number;
  orphansAfter: number;
  medianConvergeMs: number | null;
  maxConvergeMs: number | null;
  results: TrialResult[];
}

export function summarize(seed: number, results: TrialResult[]): ChaosSummary {
  const times = results.flatMap((r) => (r.convergeMs === null ? [] : [r.convergeMs]));
  return {
    seed,
    trials: results.length,
    converged: results.filter((r) => r.converged && r.violations.length === 0).length,
    duplicates: results.reduce((n, r) => n + r.duplicates, 0),
    orphansBefore: results.reduce((n, r) => n + r.orphansBefore, 0),
    orphansAfter: results.reduce((n, r) => n + r.orphansAfter, 0),
    medianConvergeMs: median(times),
    maxConvergeMs: times.length ? Math.max(...times) : null,
    results,
  };
}

/** The summary as a markdown table, padded the way Prettier formats one (results.md stays format-clean). */
export function chaosTable(s: ChaosSummary): string {
  const sec = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);
  const restarts = (d: Disruption) => s.results.filter((r) => r.disruptions.includes(d)).length;
  const header = [
    'seed',
    'trials',
    'converged',
    'duplicates',
    'orphans (before → after one reconcile)',
    'converge median',
    'converge max',
    'fly-local restarts',
    'Temporal restarts',
  ];
  const row = [
    String(s.seed),
    String(s.trials),
    String(s.converged),
    String(s.duplicates),
    `${s.orphansBefore} → ${s.orphansAfter}`,
    sec(s.medianConvergeMs),
    sec(s.maxConvergeMs),
    String(restarts('fly-local restart')),
    String(restarts('temporal restart')),
  ];
  const widths = header.map((h, i) => Math.max(3, h.length, row[i]!.length));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), line(row)].join('\n');
}
