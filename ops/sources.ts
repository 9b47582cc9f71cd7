import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  FlyMachineIdSearchAttribute,
  MachineStateSearchAttribute,
  RegionSearchAttribute,
  TierSearchAttribute,
  UserIdSearchAttribute,
} from '../common/search-attributes';
import type { FlyClient } from '../fly/client';
import { isNotFound } from '../fly/errors';
import { isGone, type Machine } from '../fly/machines';
import type { ServiceStore } from '../store/types';
import { statusQuery } from '../workflows/contract';
import { statusFromListing, type FleetMachine, type FleetRow, type FleetWorkflow } from '../workflows/reconcile-plan';
import { mapLimit } from '../common/map-limit';
import { toFleetMachines } from '../fly/fleet';
import { runningMachineWorkflowsQuery, toFleetRow, type WorkflowListing } from './fleet';
import { checked, machineStatusSchema, type CheckedStatus } from './schemas';

/** What the CLI reads: Temporal visibility, the status query (under a deadline), describe, Fly machines. */

/** How long a status query may wait for a worker to answer. */
export const QUERY_DEADLINE_MS = 5_000;

/** The running machine workflows of `taskQueue`, from visibility (search attributes are eventually consistent). */
export async function listRunningWorkflows(client: Client, taskQueue: string): Promise<WorkflowListing[]> {
  const listed: WorkflowListing[] = [];
  for await (const wf of client.workflow.list({ query: runningMachineWorkflowsQuery(taskQueue) })) {
    const sa = wf.typedSearchAttributes;
    listed.push({
      workflowId: wf.workflowId,
      userId: sa.get(UserIdSearchAttribute) ?? wf.workflowId.replace(/^machine-/, ''),
      state: sa.get(MachineStateSearchAttribute) ?? null,
      tier: sa.get(TierSearchAttribute) ?? null,
      region: sa.get(RegionSearchAttribute) ?? null,
      machineId: sa.get(FlyMachineIdSearchAttribute) ?? null,
      startTime: wf.startTime.toISOString(),
    });
  }
  return listed;
}

export interface Described {
  workflowId: string;
  runId: string;
  /** RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT. */
  status: string;
  taskQueue: string;
  startTime: string;
  closeTime: string | null;
}

/** The workflow's latest run, or null when none was ever started with this id (or its history is gone). */
export async function describeWorkflow(client: Client, workflowId: string): Promise<Described | null> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return {
      workflowId,
      runId: d.runId,
      status: d.status.name,
      taskQueue: d.taskQueue,
      startTime: d.startTime.toISOString(),
      closeTime: d.closeTime?.toISOString() ?? null,
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The status query's answer, or why there is none (no worker answered within the deadline, say). */
export async function queryStatus(
  client: Client,
  workflowId: string,
): Promise<{ status: CheckedStatus; error: null } | { status: null; error: string }> {
  try {
    const answer = await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      client.workflow.getHandle(workflowId).query(statusQuery),
    );
    return { status: checked(machineStatusSchema, answer, `the status query of ${workflowId}`), error: null };
  } catch (err) {
    return { status: null, error: err instanceof Error ? err.message : String(err) };
  }
}

/** The user's live Fly machines (by the `user_id` metadata tag), plus `knownId` if it is not among them. */
export async function flyMachinesOf(fly: FlyClient, userId: string, knownId?: string | null): Promise<Machine[]> {
  const live = (await fly.listMachines({ metadata: { user_id: userId } })).filter((m) => !isGone(m));
  if (!knownId || live.some((m) => m.id === knownId)) return live;
  try {
    return [...live, await fly.getMachine(knownId)];
  } catch (err) {
    if (isNotFound(err)) return live;
    throw err;
  }
}

/**
 * The three listings reconcileFleet plans from, read the way its activities read them and in the
 * same order (rows, Fly machines, running workflows with their status), for `reconcile --dry-run`.
 */
export async function reconcileSnapshot(deps: {
  temporal: Client;
  taskQueue: string;
  store: ServiceStore;
  fly: FlyClient;
}): Promise<{ rows: FleetRow[]; machines: FleetMachine[]; workflows: FleetWorkflow[] }> {
  const rowList = await deps.store.listMachines();
  const billing = rowList.length ? await deps.store.listBillingFacts(rowList.map((r) => r.userId)) : new Map();
  const rows = rowList.map((r) => toFleetRow(r, billing.get(r.userId)));
  const machines = toFleetMachines(await deps.fly.listMachines({}));
  const listed = await listRunningWorkflows(deps.temporal, deps.taskQueue);
  const rowOf = new Map(rowList.map((r) => [r.userId, r]));
  const workflows = await mapLimit(listed, 8, async (w): Promise<FleetWorkflow> => {
    // As listMachineWorkflows: visibility and the row where they agree, a query only where they do not.
    const row = rowOf.get(w.userId);
    const iso = { startedAt: row?.startedAt?.toISOString() ?? null, updatedAt: row?.updatedAt.toISOString() ?? '' };
    const known = statusFromListing({ ...w, startTime: w.startTime ?? '' }, row && { ...row, ...iso });
    const { status } = known ? { status: known } : await queryStatus(deps.temporal, w.workflowId);
    return {
      workflowId: w.workflowId,
      userId: w.userId,
      status: status && { state: status.state, machineId: status.machineId, since: status.since },
      searchAttributes: { state: w.state, machineId: w.machineId },
    };
  });
  return { rows, machines, workflows };
}
