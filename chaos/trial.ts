import type { ChildProcess } from 'node:child_process';
import type { FlyClient } from '../fly/client';
import type { ServiceStore, SubscriptionTier } from '../store/types';
import { machineWorkflowId, stopSignal } from '../workflows/contract';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { reconcileFleet } from '../workflows/reconcile-fleet';
import type { ReconcileReport } from '../workflows/reconcile-plan';
import type { TrialPlan } from './faults';
import { countOrphans, observeUser, sampleDuplicates, settled, violations, type Observed } from './invariants';
import { killGroup } from '../test/kit/processes';
import { sleep, until } from '../test/kit/wait';
import { spawnWorker, type TemporalServer } from './processes';
import { trialLine, type TrialResult } from './report';

/*
 * One trial: start each user's operation (renewal and stop on a machine provisioned first, without
 * faults), turn the Fly faults on, SIGKILL the worker at the planned moment, restart fly-local and
 * Temporal as planned, restart the worker, clear the faults 3 s later, wait until every user has
 * converged, then run reconcileFleet twice at once and count orphans before and after.
 */

/** The processes and clients a run shares across its trials; `worker` is replaced at each kill. */
export interface ChaosStack extends Observed {
  dir: string;
  taskQueue: string;
  temporal: TemporalServer;
  /** Our own view of Fly: never through the fault injector's errors (only used with faults cleared). */
  fly: FlyClient;
  workerEnv: Record<string, string>;
  worker: ChildProcess;
  convergeTimeoutMs: number;
  database: { store: ServiceStore; createUser(tier?: SubscriptionTier): Promise<string> };
  log(line: string): void;
}

const settings = {
  renewalInterval: '3 seconds',
  startDeadlineSeconds: 20,
  healthDeadlineSeconds: 15,
  maxRestarts: 2,
};

export async function runTrial(stack: ChaosStack, trial: number, plan: TrialPlan): Promise<TrialResult> {
  const { client, connection, flyLocal, temporal, fly, taskQueue, dir, workerEnv } = stack;
  const { ops, disruptions, killAfterMs, faults } = plan;
  const view = (userId: string) => observeUser(stack, userId);
  const users = await Promise.all(ops.map(() => stack.database.createUser('elite')));

  const startWorkflow = (userId: string) =>
    client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
    });

  // Renewal and stop need a running machine first (no faults yet: this part is not under test).
  await Promise.all(users.map((u, i) => (ops[i] === 'provision' ? undefined : startWorkflow(u))));
  await until(
    'chaos: pre-provisioning',
    async () =>
      (
        await Promise.all(
          users.map(async (u, i) => ops[i] === 'provision' || (await view(u)).status?.state === 'running'),
        )
      ).every(Boolean),
    { timeoutMs: 90_000, everyMs: 300 },
  );

  const duplicates = sampleDuplicates(flyLocal);

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
  await killGroup(stack.worker);
  if (disruptions.includes('fly-local restart')) await flyLocal.restart();
  if (disruptions.includes('temporal restart')) await temporal.restart();
  stack.worker = spawnWorker({ dir, env: workerEnv });
  const t0 = Date.now();
  await sleep(3000); // a few more seconds under faults, on the new worker
  flyLocal.setFaults({});

  let convergeMs: number | null = null;
  let last: string[] = [];
  while (Date.now() - t0 < stack.convergeTimeoutMs) {
    const views = await Promise.all(users.map(async (u) => [u, await view(u)] as const));
    last = views.flatMap(([u, v]) => (settled(v) ? violations(u, v, false) : [`${u.slice(0, 8)}: not settled`]));
    if (last.length === 0) {
      convergeMs = Date.now() - t0;
      break;
    }
    await sleep(500);
  }
  duplicates.stop();

  const before = await Promise.all(users.map(async (u) => [u, await view(u)] as const));
  const orphansBefore = await countOrphans(stack);
  const reports = await Promise.all([reconcileNow(), reconcileNow()]);
  const orphansAfter = await countOrphans(stack);
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
    duplicates: duplicates.names.size,
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
  stack.log(trialLine(ops, result));
  await cleanup(users);
  return result;

  async function reconcileNow(): Promise<ReconcileReport> {
    return client.workflow.execute(reconcileFleet, {
      taskQueue,
      workflowId: `reconcile-chaos-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
      args: [{ minMachineAgeSeconds: 0 }],
      workflowExecutionTimeout: '2 minutes',
    });
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

function countBy<T extends string>(xs: T[]): Partial<Record<T, number>> {
  const out: Partial<Record<T, number>> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
