import type { BillingFacts } from '../common/entitlement';
import { entitlement } from '../common/entitlement';
import { activeMachineStates, type MachineState } from '../common/machine-states';

/*
 * What reconcileFleet decides, as data and one pure planner: the listings the activities return
 * (rows, Fly machines, running machine workflows), the actions they carry out, and planReconcile,
 * which the workflow replays and workflows/reconcile-fleet.test.ts checks as inputs → outputs.
 */

/** A Fly machine carrying a `user_id` tag, in a live state. */
export interface FleetMachine {
  id: string;
  name: string;
  state: string;
  userId: string;
  /** The `workflow_id` tag, if any. */
  workflowIdTag: string | null;
  createdAt: string | null;
}

/** A running machineLifecycle workflow; `status` is null when neither visibility and its row nor a query could say. */
export interface FleetWorkflow {
  workflowId: string;
  userId: string;
  status: { state: string; machineId: string | null; since: string } | null;
  /** From visibility, for the report when the query failed. */
  searchAttributes: { state: string | null; machineId: string | null };
}

export interface FleetRow {
  userId: string;
  status: MachineState;
  machineId: string | null;
  workflowId: string | null;
  updatedAt: string;
  /** The user's stored billing state (entitlement is decided from it by the plan). */
  billing?: BillingFacts;
}

export interface DestroyAction {
  machineId: string;
  userId: string;
  /** `orphan`: no running workflow; `duplicate`: the running workflow owns another machine. */
  kind: 'orphan' | 'duplicate';
  /** For a duplicate: the machine the workflow's status names (kept). */
  keep?: string;
}
export interface RepairAction {
  userId: string;
  from: MachineState;
  /** The row's updated_at when planned: the repair is skipped if the row moved since. */
  seenUpdatedAt: string;
  /** `running`: a running workflow says so; `ended`: no workflow runs (the activity picks stopped/error). */
  kind: 'ended' | 'running';
  machineId?: string | null;
}
export interface SignalAction {
  workflowId: string;
  userId: string;
  machineId: string;
}
/** A running workflow whose user the stored billing state no longer entitles: nudge it to re-read and stop. */
export interface BillingNudgeAction {
  workflowId: string;
  userId: string;
  /** Why, from entitlement(): e.g. "payment overdue since …, grace ended …". */
  detail: string;
}
export interface ActionResult {
  done: boolean;
  /** What happened, for the report (`destroyed`, `already gone`, `skipped: …`). */
  outcome: string;
  to?: MachineState;
}

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

const ACTIVE_ROW = new Set<MachineState>(activeMachineStates);

/**
 * A running workflow's status from what no action is billed for: its search attributes (visibility) and its row.
 * `since` matters only while running (the plan's age guard), and only the row knows it (`started_at`): the two must
 * agree on state and machine for that. Otherwise undefined: the listing asks the workflow (a query, rare).
 */
export function statusFromListing(
  listed: { state: string | null; machineId: string | null; startTime: string },
  row: { status: string; machineId: string | null; startedAt: string | null; updatedAt: string } | undefined,
): FleetWorkflow['status'] | undefined {
  if (!listed.state) return undefined;
  // Not running: the plan leaves such a workflow's machines and row alone whatever its since.
  if (listed.state !== 'running') return { state: listed.state, machineId: listed.machineId, since: listed.startTime };
  if (!row || row.status !== 'running' || !listed.machineId || row.machineId !== listed.machineId) return undefined;
  return { state: 'running', machineId: listed.machineId, since: row.startedAt ?? row.updatedAt };
}

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
