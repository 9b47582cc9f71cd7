import { log, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { planReconcile, type ActionResult, type ReconcileInput, type ReconcileReport } from './reconcile-plan';

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
