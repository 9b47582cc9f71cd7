import { activeMachineStates, type MachineState } from '../common/machine-states';
import type { BillingFacts } from '../common/entitlement';

import type { MachineRow } from '../store/types';
import { MACHINE_WORKFLOW_TYPE } from '../workflows/contract';
import type { FleetRow } from '../workflows/reconcile-plan';

/*
 * The fleet as operators see it, pure: the running machine workflows (visibility and their search
 * attributes) joined with the cloud_machines rows, and the listings reconcile's planner takes.
 */

/** A running machineLifecycle workflow, as visibility lists it. */
export interface WorkflowListing {
  workflowId: string;
  userId: string;
  state: string | null;
  tier: string | null;
  region: string | null;
  machineId: string | null;
  /** When this run started (a continue-as-new starts a new run). */
  startTime: string | null;
}

export type RowListing = Pick<
  MachineRow,
  'userId' | 'status' | 'region' | 'machineId' | 'lastHealthyAt' | 'startedAt' | 'stoppedAt' | 'updatedAt'
> & { errorMessage?: string | null };

/** One line of `machines`: the workflow's view when one runs, else the row's. */
export interface MachineListing {
  userId: string;
  state: string;
  /** `workflow`: a machine workflow runs (state from its search attributes); `row`: only the row. */
  source: 'workflow' | 'row';
  tier: string | null;
  region: string | null;
  flyMachineId: string | null;
  /** Since when the row says it is in its state (running: started_at, stopped: stopped_at, else updated_at). */
  since: string | null;
  lastHealthyAt: string | null;
  workflowId: string | null;
  /** Where the two disagree, or why a row ended. */
  note: string | null;
}

export interface MachineFilter {
  state?: string;
  tier?: string;
  region?: string;
}

/** The visibility query for this fleet's running machine workflows (the one reconcile uses). */
export const runningMachineWorkflowsQuery = (taskQueue: string) =>
  `WorkflowType = '${MACHINE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, "\\'")}'`;

const ACTIVE = new Set<string>(activeMachineStates);
const iso = (d: Date | null) => d?.toISOString() ?? null;

function rowSince(row: RowListing): string | null {
  if (row.status === 'running') return iso(row.startedAt) ?? iso(row.updatedAt);
  if (row.status === 'stopped') return iso(row.stoppedAt) ?? iso(row.updatedAt);
  return iso(row.updatedAt);
}

function noteOf(wf: WorkflowListing | undefined, row: RowListing | undefined): string | null {
  if (wf && !row) return 'no row yet';
  if (wf && row) {
    if (wf.state && wf.state !== row.status) return `row says ${row.status}`;
    if (wf.machineId && row.machineId && wf.machineId !== row.machineId) return `row names machine ${row.machineId}`;
    return null;
  }
  if (row && ACTIVE.has(row.status)) return `row says ${row.status} but no workflow runs`;
  if (row?.status === 'error' && row.errorMessage) return row.errorMessage;
  return null;
}

/**
 * Every user with a running machine workflow or a row, one line each, sorted by user id. The
 * workflow wins where both speak (it owns the machine); `tiers` (the effective tier from billing)
 * fills in the tier of users whose workflow has not published one.
 */
export function joinMachines(
  rows: RowListing[],
  workflows: WorkflowListing[],
  tiers: ReadonlyMap<string, string | null> = new Map(),
): MachineListing[] {
  const rowOf = new Map(rows.map((r) => [r.userId, r]));
  const wfOf = new Map(workflows.map((w) => [w.userId, w]));
  const users = [...new Set([...rowOf.keys(), ...wfOf.keys()])].sort();
  return users.map((userId) => {
    const wf = wfOf.get(userId);
    const row = rowOf.get(userId);
    return {
      userId,
      state: wf?.state ?? row?.status ?? 'unknown',
      source: wf ? 'workflow' : 'row',
      tier: wf?.tier ?? tiers.get(userId) ?? null,
      region: wf?.region ?? row?.region ?? null,
      flyMachineId: wf?.machineId ?? row?.machineId ?? null,
      since: row ? rowSince(row) : (wf?.startTime ?? null),
      lastHealthyAt: iso(row?.lastHealthyAt ?? null),
      workflowId: wf?.workflowId ?? null,
      note: noteOf(wf, row),
    };
  });
}

/** `--state`, `--tier`, `--region`: exact matches, all that are given. */
export function filterMachines(listings: MachineListing[], f: MachineFilter): MachineListing[] {
  return listings.filter(
    (m) =>
      (f.state === undefined || m.state === f.state) &&
      (f.tier === undefined || m.tier === f.tier) &&
      (f.region === undefined || m.region === f.region),
  );
}

/** A row as reconcile's planner takes it. */
export const toFleetRow = (
  r: Pick<MachineRow, 'userId' | 'status' | 'machineId' | 'workflowId' | 'updatedAt'>,
  billing: BillingFacts | undefined,
): FleetRow => ({
  userId: r.userId,
  status: r.status as MachineState,
  machineId: r.machineId,
  workflowId: r.workflowId,
  updatedAt: r.updatedAt.toISOString(),
  billing,
});
