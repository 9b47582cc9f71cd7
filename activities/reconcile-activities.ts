import { log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  FlyMachineIdSearchAttribute,
  MachineStateSearchAttribute,
  UserIdSearchAttribute,
} from '../common/search-attributes';
import { entitlement } from '../common/entitlement';
import { activeMachineStates, type MachineState } from '../common/machine-states';
import type { ServiceStore } from '../store/types';
import { billingChangedSignal, MACHINE_WORKFLOW_TYPE, machineVanishedSignal } from '../workflows/contract';
import type {
  ActionResult,
  BillingNudgeAction,
  DestroyAction,
  FleetMachine,
  FleetRow,
  FleetWorkflow,
  RepairAction,
  SignalAction,
} from '../workflows/reconcile-plan';
import { statusFromListing } from '../workflows/reconcile-plan';
import { mapLimit } from '../common/map-limit';
import { destroyMachine, toFleetMachines } from '../fly/fleet';
import { flyCall } from './fly-failures';
import { type FlyClient } from '../fly/client';
import { isGone } from '../fly/machines';
import { isNotFound } from '../fly/errors';
import { heartbeat } from './heartbeat';
import { machineWorkflowStatus } from './machine-workflow-status';

/*
 * The Node side of reconcileFleet (docs/technical-description.md §3): three listings (rows, Fly machines, running machine
 * workflows) and three idempotent actions (destroy, repair a row, signal a workflow). Every action
 * re-checks what it acts on right before acting, so a plan made a minute ago cannot destroy a machine
 * a workflow has since adopted, and writes one `machine_events` row (reason `reconcile: …`) keyed by
 * a transition id derived from what it saw: two reconciles at once write it once.
 */

const ACTIVE_ROW: readonly MachineState[] = activeMachineStates;

export interface ReconcileDeps {
  fly: FlyClient;
  store: ServiceStore;
  /** The Temporal client and the machine workflows' task queue. Wired by the worker (worker/main.ts). */
  temporal?: { client: Client; taskQueue: string };
}

const isDuplicateTransition = (err: unknown) =>
  err instanceof Error && /duplicate key|unique/i.test(err.message) && /transition/i.test(err.message);
const isUnknownUser = (err: unknown) =>
  err instanceof Error && /foreign key/i.test(err.message) && /user/i.test(err.message);

export const createReconcileActivities = (deps: ReconcileDeps) => {
  const { fly, store } = deps;
  const temporal = () => {
    if (!deps.temporal)
      throw ApplicationFailure.nonRetryable(
        'reconcile activities need a Temporal client: the worker wires it (worker/main.ts)',
        'ReconcileNotWired',
      );
    return deps.temporal;
  };

  const { queryStatus, describeWorkflow, describedStatus } = machineWorkflowStatus(() => temporal().client);

  /** Writes the audit event (and the row) once per transition id; a user the database does not know is only logged. */
  async function record(t: Parameters<ServiceStore['recordMachineTransition']>[0]): Promise<void> {
    try {
      await store.recordMachineTransition(t);
    } catch (err) {
      if (isDuplicateTransition(err)) return; // a concurrent reconcile wrote the same event first
      if (isUnknownUser(err)) {
        log.warn('reconcile: no such user in the database, event not recorded', { userId: t.userId, reason: t.reason });
        return;
      }
      throw err;
    }
  }

  return {
    /** Every cloud_machines row (read before the workflows, so a row written by a new workflow has a visible workflow). */
    async listMachineRowsForReconcile(): Promise<FleetRow[]> {
      const rows = await store.listMachines();
      const billing = await store.listBillingFacts(rows.map((r) => r.userId));
      return rows.map((r) => ({
        userId: r.userId,
        status: r.status,
        machineId: r.machineId,
        workflowId: r.workflowId,
        updatedAt: r.updatedAt.toISOString(),
        billing: billing.get(r.userId),
      }));
    },

    /** Every live Fly machine with a `user_id` tag (listed before the workflows: a machine seen here predates them). */
    async listFleetMachines(): Promise<FleetMachine[]> {
      return toFleetMachines(await flyCall(() => fly.listMachines({})));
    },

    /**
     * Running machineLifecycle workflows of this fleet's task queue, each with its status: from visibility and its
     * row (listing and describing are not billed; a query per workflow per run was most of reconcile's cost), by a
     * query only where the two disagree (a row being repaired, visibility a moment behind).
     */
    async listMachineWorkflows(): Promise<FleetWorkflow[]> {
      const { client, taskQueue } = temporal();
      const query = `WorkflowType = '${MACHINE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue}'`;
      const listed: (FleetWorkflow['searchAttributes'] & { workflowId: string; userId: string; startTime: string })[] =
        [];
      for await (const wf of client.workflow.list({ query })) {
        const attribute = wf.typedSearchAttributes;
        listed.push({
          workflowId: wf.workflowId,
          userId: attribute.get(UserIdSearchAttribute) ?? wf.workflowId.replace(/^machine-/, ''),
          state: attribute.get(MachineStateSearchAttribute) ?? null,
          machineId: attribute.get(FlyMachineIdSearchAttribute) ?? null,
          startTime: wf.startTime.toISOString(),
        });
        if (listed.length % 100 === 0) heartbeat({ listed: listed.length });
      }
      const rowOf = new Map((await store.listMachines()).map((r) => [r.userId, r]));
      return mapLimit(listed, 8, async ({ startTime, ...w }) => {
        const row = rowOf.get(w.userId);
        const iso = { startedAt: row?.startedAt?.toISOString() ?? null, updatedAt: row?.updatedAt.toISOString() ?? '' };
        const known = statusFromListing({ ...w, startTime }, row && { ...row, ...iso });
        if (!known) heartbeat({ querying: w.workflowId });
        const searchAttributes = { state: w.state, machineId: w.machineId };
        return {
          workflowId: w.workflowId,
          userId: w.userId,
          status: known ?? (await queryStatus(w.workflowId)),
          searchAttributes,
        };
      });
    },

    /**
     * Destroys a machine no running workflow owns (or a duplicate of the one it owns). Re-checks first:
     * an orphan whose user now has a running workflow, or a duplicate that has become the workflow's
     * machine, is left alone.
     */
    async reconcileDestroyMachine(a: DestroyAction): Promise<ActionResult> {
      heartbeat({ destroying: a.machineId });
      const described = await describeWorkflow(a.userId);
      let workflowState: string | undefined;
      if (a.kind === 'orphan' && described.status === 'RUNNING')
        return { done: false, outcome: 'skipped: a workflow runs now' };
      if (a.kind === 'duplicate') {
        const s = describedStatus(described);
        if (!s || s.state !== 'running' || !s.machineId || s.machineId === a.machineId)
          return {
            done: false,
            outcome: 'skipped: the workflow is not in a settled running state with another machine',
          };
        workflowState = s.state;
      }
      const outcome = await destroyMachine(fly, a.machineId);
      if (outcome === 'already gone') return { done: false, outcome };
      const row = await store.getMachine(a.userId);
      // The row belongs to the workflow while one runs: keep its state; otherwise it is (or now becomes) ended.
      const status: MachineState =
        (workflowState as MachineState | undefined) ??
        (row && !ACTIVE_ROW.includes(row.status) ? row.status : row?.status === 'stopping' ? 'stopped' : 'error');
      await record({
        userId: a.userId,
        status,
        machineId: a.kind === 'duplicate' ? a.keep : undefined,
        reason:
          a.kind === 'orphan'
            ? `reconcile: destroyed orphan machine ${a.machineId} (no running workflow)`
            : `reconcile: destroyed duplicate machine ${a.machineId} (the workflow owns ${a.keep})`,
        details: { reconcile: 'destroy', machineId: a.machineId, kind: a.kind },
        transitionId: `reconcile:destroy:${a.machineId}`,
      });
      return { done: true, outcome, to: status };
    },

    /** Repairs a row that disagrees with the workflows, unless the row or the workflow moved since the plan. */
    async reconcileRepairRow(a: RepairAction): Promise<ActionResult> {
      const row = await store.getMachine(a.userId);
      if (!row || row.updatedAt.toISOString() !== a.seenUpdatedAt)
        return { done: false, outcome: 'skipped: the row changed since' };
      const described = await describeWorkflow(a.userId);
      const wfStatus = described.status;
      if (a.kind === 'ended') {
        if (wfStatus === 'RUNNING') return { done: false, outcome: 'skipped: a workflow runs now' };
        // A workflow that completed (or a row caught mid-stop) ended cleanly; anything else ended in error.
        const to: MachineState = wfStatus === 'COMPLETED' || row.status === 'stopping' ? 'stopped' : 'error';
        const why = wfStatus === 'NONE' ? 'no workflow exists' : `the workflow is ${wfStatus.toLowerCase()}`;
        await record({
          userId: a.userId,
          status: to,
          reason: `reconcile: row said ${row.status} but no workflow runs (${why})`,
          errorMessage: to === 'error' ? `reconcile: row said ${row.status} but no workflow runs (${why})` : undefined,
          details: { reconcile: 'repair', from: row.status, workflow: wfStatus },
          transitionId: `reconcile:repair:${a.userId}:${a.seenUpdatedAt}`,
        });
        return { done: true, outcome: 'repaired', to };
      }
      const s = describedStatus(described);
      if (!s || s.state !== 'running') return { done: false, outcome: 'skipped: the workflow is no longer running' };
      await record({
        userId: a.userId,
        status: 'running',
        machineId: s.machineId ?? undefined,
        reason: `reconcile: row said ${row.status}${row.machineId !== s.machineId ? ` (machine ${row.machineId ?? 'none'})` : ''}, the workflow says running on ${s.machineId ?? 'none'}`,
        details: { reconcile: 'repair', from: row.status, machineId: s.machineId },
        transitionId: `reconcile:repair:${a.userId}:${a.seenUpdatedAt}`,
      });
      return { done: true, outcome: 'repaired', to: 'running' };
    },

    /** Tells a running workflow its machine is gone; it renews at once and provisions a replacement. */
    async reconcileSignalVanished(a: SignalAction): Promise<ActionResult> {
      const { client } = temporal();
      const m = await fly.getMachine(a.machineId).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (m && !isGone(m)) return { done: false, outcome: 'skipped: the machine is there' };
      const row = await store.getMachine(a.userId);
      // Recorded before the signal: the renewal it triggers writes the next state after this event, not before.
      await record({
        userId: a.userId,
        status: row?.status ?? 'running',
        reason: `reconcile: machine ${a.machineId} vanished; signalled ${a.workflowId} to renew now`,
        details: { reconcile: 'signal', machineId: a.machineId },
        transitionId: `reconcile:vanished:${a.workflowId}:${a.machineId}`,
      });
      try {
        await client.workflow
          .getHandle(a.workflowId)
          .signal(machineVanishedSignal, { machineId: a.machineId, reason: 'reconcile: not among live Fly machines' });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { done: false, outcome: 'skipped: the workflow ended' };
        throw err;
      }
      return { done: true, outcome: 'signalled' };
    },

    /**
     * A workflow running for a user whose stored billing says stop (its nudge was lost, say): audited, then
     * signalled to re-read now rather than at its next renewal. Re-checks the billing state first.
     */
    async reconcileNudgeBilling(a: BillingNudgeAction): Promise<ActionResult> {
      const { client } = temporal();
      const now = entitlement(await store.getBillingFacts(a.userId), Date.now());
      if (now.entitled) return { done: false, outcome: 'skipped: entitled again' };
      const row = await store.getMachine(a.userId);
      await record({
        userId: a.userId,
        status: row?.status ?? 'running',
        reason: `reconcile: billing says stop (${now.detail}); signalled ${a.workflowId} to re-read`,
        details: { reconcile: 'billing', denied: now.denied },
        transitionId: `reconcile:billing:${a.workflowId}:${now.denied}:${now.graceEndsAt ?? now.tier}`,
      });
      try {
        await client.workflow.getHandle(a.workflowId).signal(billingChangedSignal, { reason: 'reconcile' });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { done: false, outcome: 'skipped: the workflow ended' };
        throw err;
      }
      return { done: true, outcome: 'signalled' };
    },
  };
};
