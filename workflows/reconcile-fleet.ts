import { log, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { entitlement } from '../common/entitlement';
import type {
  ActionResult,
  BillingNudgeAction,
  DestroyAction,
  FleetMachine,
  FleetRow,
  FleetWorkflow,
  RepairAction,
  SignalAction,
} from '../activities/reconcile-activities';

export interface ReconcileInput {
  /**
   * Nothing younger than this is touched (a machine by its Fly `created_at`, a row by its
   * `updated_at`, a workflow's state by its `since`), so reconcile never races a provisioning. Default 600.
   */
  minMachineAgeSeconds?: number;
}

export interface ReconcileReport {
  machinesSeen: number;
  workflowsSeen: number;
  rowsSeen: number;
  destroyed: (DestroyAction & { outcome: string })[];
  repaired: { userId: string; from: string; to: string }[];
  signalled: SignalAction[];
  /** Workflows told to re-read billing because the stored state no longer entitles their user. */
  nudged: BillingNudgeAction[];
  /** Planned actions the re-check right before acting called off (the fleet moved meanwhile). */
  skipped: { action: string; target: string; outcome: string }[];
}

export interface ReconcilePlan {
  destroy: DestroyAction[];
  repair: RepairAction[];
  signal: SignalAction[];
  nudge: BillingNudgeAction[];
}

const ACTIVE_ROW = new Set(['provisioning', 'starting', 'running', 'stopping']);

/**
 * What reconcile should do, from three listings: pure, so the workflow replays it and a test can
 * check it directly. Conservative by design: a workflow whose status query went unanswered, or that
 * is mid-step (provisioning, starting, stopping), owns all of its user's machines and its row.
 */
export function planReconcile(
  snapshot: { rows: FleetRow[]; machines: FleetMachine[]; workflows: FleetWorkflow[] },
  now: number,
  minAgeSeconds: number,
): ReconcilePlan {
  const oldEnough = (iso: string | null) => iso === null || now - Date.parse(iso) >= minAgeSeconds * 1000;
  const workflowOf = new Map(snapshot.workflows.map((w) => [w.userId, w]));
  const liveIds = new Set(snapshot.machines.map((m) => m.id));
  const plan: ReconcilePlan = { destroy: [], repair: [], signal: [], nudge: [] };
  const billingOf = new Map(snapshot.rows.map((r) => [r.userId, r.billing]));

  for (const m of snapshot.machines) {
    if (!oldEnough(m.createdAt)) continue;
    const wf = workflowOf.get(m.userId);
    if (!wf) plan.destroy.push({ machineId: m.id, userId: m.userId, kind: 'orphan' });
    else if (wf.status?.state === 'running' && wf.status.machineId && wf.status.machineId !== m.id)
      plan.destroy.push({ machineId: m.id, userId: m.userId, kind: 'duplicate', keep: wf.status.machineId });
  }

  for (const row of snapshot.rows) {
    if (!oldEnough(row.updatedAt)) continue;
    const wf = workflowOf.get(row.userId);
    if (!wf) {
      if (ACTIVE_ROW.has(row.status))
        plan.repair.push({ userId: row.userId, from: row.status, seenUpdatedAt: row.updatedAt, kind: 'ended' });
    } else if (
      wf.status?.state === 'running' &&
      oldEnough(wf.status.since) &&
      (row.status !== 'running' || row.machineId !== wf.status.machineId)
    ) {
      plan.repair.push({
        userId: row.userId,
        from: row.status,
        seenUpdatedAt: row.updatedAt,
        kind: 'running',
        machineId: wf.status.machineId,
      });
    }
  }

  for (const wf of snapshot.workflows) {
    const s = wf.status;
    if (s?.state === 'running' && s.machineId && !liveIds.has(s.machineId) && oldEnough(s.since))
      plan.signal.push({ workflowId: wf.workflowId, userId: wf.userId, machineId: s.machineId });
    // Entitlement is decided here exactly as the API and the workflow decide it (common/entitlement.ts).
    const billing = billingOf.get(wf.userId);
    const e = billing && entitlement(billing, now);
    if (s?.state === 'running' && e && !e.entitled)
      plan.nudge.push({ workflowId: wf.workflowId, userId: wf.userId, detail: e.detail });
  }
  return plan;
}

const list = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});
const act = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['ReconcileNotWired'],
  },
});

/**
 * The fleet's safety net, run by a Schedule (`reconcile-fleet`, overlap SKIP): lists rows, Fly
 * machines and running machine workflows (in that order: whatever a newer workflow created is too
 * young to touch), then destroys machines no running workflow owns, repairs rows that disagree,
 * signals workflows whose machine vanished, and nudges those whose user billing no longer entitles.
 * Every action is idempotent and audited.
 */
export async function reconcileFleet(input: ReconcileInput = {}): Promise<ReconcileReport> {
  const minAge = input.minMachineAgeSeconds ?? 600;
  const rows = await list.listMachineRowsForReconcile();
  const machines = await list.listFleetMachines();
  const workflows = await list.listMachineWorkflows();
  const plan = planReconcile({ rows, machines, workflows }, Date.now(), minAge);
  const report: ReconcileReport = {
    machinesSeen: machines.length,
    workflowsSeen: workflows.length,
    rowsSeen: rows.length,
    destroyed: [],
    repaired: [],
    signalled: [],
    nudged: [],
    skipped: [],
  };
  const skip = (action: string, target: string, r: ActionResult) =>
    report.skipped.push({ action, target, outcome: r.outcome });

  // Rows first: an orphan's destroy event then lands on an already repaired row.
  for (const a of plan.repair) {
    const r = await act.reconcileRepairRow(a);
    if (r.done) report.repaired.push({ userId: a.userId, from: a.from, to: r.to ?? '?' });
    else skip('repair', a.userId, r);
  }
  for (const a of plan.destroy) {
    const r = await act.reconcileDestroyMachine(a);
    if (r.done) report.destroyed.push({ ...a, outcome: r.outcome });
    else skip('destroy', a.machineId, r);
  }
  for (const a of plan.signal) {
    const r = await act.reconcileSignalVanished(a);
    if (r.done) report.signalled.push(a);
    else skip('signal', a.workflowId, r);
  }

  for (const a of plan.nudge) {
    const r = await act.reconcileNudgeBilling(a);
    if (r.done) report.nudged.push(a);
    else skip('nudge', a.workflowId, r);
  }

  const summary =
    `seen ${machines.length} machines, ${workflows.length} workflows, ${rows.length} rows; ` +
    `destroyed ${report.destroyed.length}, repaired ${report.repaired.length}, signalled ${report.signalled.length}, ` +
    `nudged ${report.nudged.length}`;
  setCurrentDetails(summary);
  log.info('reconcile done', { ...report, destroyed: report.destroyed.length, skipped: report.skipped.length });
  return report;
}
