import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { activeMachineStates } from '../common/machine-states';

import { reconcileScheduleId } from '../worker/reconcile-schedule';
import { durationMs, machineWorkflowId, stopUpdate, type StopRequest } from '../workflows/contract';
import { planReconcile, type ReconcileInput, type ReconcileReport } from '../workflows/reconcile-plan';
import type { CommandOf } from './args';
import type { OpsDeps } from './context';
import { renderPlan, renderReport } from './render';
import { checked, machineStatusSchema, reconcileReportSchema } from './schemas';
import { describeWorkflow, flyMachinesOf, reconcileSnapshot } from './sources';
import { toJson } from './table';
import { destroyMachine } from '../fly/fleet';

/** The commands that change things: `stop`, `force-stop`, `reconcile`. Each is safe to run again. */

const ACTIVE = new Set<string>(activeMachineStates);
const RECONCILE_WORKFLOW_TYPE = 'reconcileFleet';

/** `stop`: the workflow's stop update (it returns once the machine is destroyed and the workflow stopped). */
export async function stop(c: CommandOf<'stop'>, deps: OpsDeps): Promise<void> {
  const workflowId = machineWorkflowId(c.userId);
  const described = await describeWorkflow(deps.temporal, workflowId);
  const nothing = (why: string) =>
    deps.out(`no machine workflow running for user ${c.userId} (${why}): nothing to stop\n`);
  if (described?.status !== 'RUNNING')
    return nothing(described ? `last run ${described.status.toLowerCase()}` : 'none');
  deps.out(`stopping ${workflowId} (waits until its machine is destroyed)…\n`);
  try {
    const request = { reason: c.reason ? `operator: ${c.reason}` : 'operator', requestedBy: 'operator' };
    const answer = await sendStop(deps, workflowId, request);
    const s = checked(machineStatusSchema, answer, 'the stop update');
    deps.out(`${workflowId}: ${s.state}${s.reason ? ` (${s.reason})` : ''}\n`);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return nothing('it ended meanwhile');
    throw err;
  }
}

/** A run that is continuing as new refuses the update; the next run (latest, by workflow id) takes it. */
async function sendStop(deps: OpsDeps, workflowId: string, request: StopRequest, attempts = 5): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await deps.temporal.workflow.getHandle(workflowId).executeUpdate(stopUpdate, { args: [request] });
    } catch (err) {
      const refused = err instanceof WorkflowUpdateFailedError && /continuing as new/.test(String(err.cause));
      if (!refused || attempt >= attempts) throw err;
      await new Promise((done) => setTimeout(done, 500));
    }
  }
}

const isUnknownUser = (err: unknown) => err instanceof Error && /foreign key/i.test(err.message);

/**
 * `force-stop`: for a workflow that cannot stop by itself (a stuck worker, a machine that will not
 * die). Terminates the workflow first (so it cannot make another machine), destroys every Fly machine
 * tagged with the user, then records `stopped` with the operator's reason, once per row version seen.
 */
export async function forceStop(c: CommandOf<'force-stop'>, deps: OpsDeps): Promise<void> {
  const workflowId = machineWorkflowId(c.userId);
  const reason = `operator: force-stop: ${c.reason}`;
  const before = await deps.store.getMachine(c.userId);
  const described = await describeWorkflow(deps.temporal, workflowId);
  let terminated: string | null = null;
  if (described?.status === 'RUNNING') {
    try {
      await deps.temporal.workflow.getHandle(workflowId).terminate(reason);
      terminated = described.runId;
      deps.out(`terminated ${workflowId} (run ${described.runId})\n`);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      deps.out(`${workflowId} ended meanwhile\n`);
    }
  } else {
    deps.out(
      `no machine workflow running for user ${c.userId}${described ? ` (last run ${described.status.toLowerCase()})` : ''}\n`,
    );
  }

  const destroyed: string[] = [];
  for (const m of await flyMachinesOf(deps.fly, c.userId)) {
    const outcome = await destroyMachine(deps.fly, m.id!);
    deps.out(`Fly machine ${m.id}: ${outcome}\n`);
    if (outcome === 'destroyed') destroyed.push(m.id!);
  }
  if (!terminated && !destroyed.length && !(before && ACTIVE.has(before.status))) {
    deps.out(
      `nothing to force-stop for user ${c.userId}: no workflow runs, no live Fly machine, row ${before?.status ?? 'absent'}\n`,
    );
    return;
  }
  try {
    await deps.store.recordMachineTransition({
      userId: c.userId,
      status: 'stopped',
      reason,
      details: { operator: 'force-stop', terminatedRunId: terminated, destroyed },
      // Once per row version seen: a rerun after a failure halfway records the event once.
      transitionId: `operator:force-stop:${c.userId}:${before?.updatedAt.toISOString() ?? 'no-row'}`,
    });
  } catch (err) {
    if (!isUnknownUser(err)) throw err;
    deps.out(`not recorded: user ${c.userId} is not in the database\n`);
    return;
  }
  deps.out(`recorded stopped for user ${c.userId}: ${reason}\n`);
}

/**
 * `reconcile`: runs reconcileFleet now, on the fleet's task queue, under a unique id (next to the
 * schedule's runs, never instead of them) and prints its report. `--dry-run` reads the same three
 * listings here and prints the plan `planReconcile` makes of them; nothing is done.
 */
export async function reconcile(c: CommandOf<'reconcile'>, deps: OpsDeps): Promise<void> {
  const minAge = c.minAge ? durationMs(c.minAge)! / 1000 : deps.minMachineAgeSeconds;
  if (c.dryRun) {
    const snapshot = await reconcileSnapshot(deps);
    const plan = planReconcile(snapshot, deps.now?.() ?? Date.now(), minAge);
    const seen = {
      machines: snapshot.machines.length,
      workflows: snapshot.workflows.length,
      rows: snapshot.rows.length,
    };
    deps.out(
      c.json ? toJson({ dryRun: true, minMachineAgeSeconds: minAge, seen, plan }) : renderPlan(plan, seen, minAge),
    );
    return;
  }
  const workflowId = `${reconcileScheduleId(deps.taskQueue)}-ops-${randomUUID().slice(0, 8)}`;
  if (!c.json) deps.out(`running ${RECONCILE_WORKFLOW_TYPE} as ${workflowId} on ${deps.taskQueue}…\n`);
  const result = await deps.temporal.workflow.execute<(input: ReconcileInput) => Promise<ReconcileReport>>(
    RECONCILE_WORKFLOW_TYPE,
    {
      taskQueue: deps.taskQueue,
      workflowId,
      args: [{ minMachineAgeSeconds: minAge }],
      workflowExecutionTimeout: '30 minutes',
    },
  );
  const report = checked(reconcileReportSchema, result, RECONCILE_WORKFLOW_TYPE);
  deps.out(c.json ? toJson({ workflowId, ...report }) : renderReport(report, workflowId));
}
