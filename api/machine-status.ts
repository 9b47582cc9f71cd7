import type { MachineState, TimelineEntry } from '../workflows/contract';
import type { MachineEvent, MachineRow } from '../store/types';

/**
 * The machine status from durable records, pure: the `cloud_machines` row and its latest `machine_events`, and,
 * while a workflow runs, what its description says (search attributes, start time). The workflow writes the row
 * and an event at every transition before its search attributes change, so these are as current as a `status`
 * query would be, and reading them is not a billed Temporal action (a query is: 720 an hour for an open page).
 */

/** What `describe()` says of a running workflow (DescribeWorkflowExecution: not an action). */
export interface LiveWorkflow {
  state: MachineState | undefined;
  region: string | undefined;
  /** This run's start (a continue-as-new starts a new run with the search attributes carried over). */
  startTime: Date;
}

export interface RecordedStatus {
  state: MachineState;
  machineId: string | null;
  region: string;
  since: string;
  lastHealthyAt: string | null;
  lastRenewedAt: string | null;
  reason: string | null;
  recent: TimelineEntry[];
  source: 'workflow' | 'table';
}

const FINAL = new Set<MachineState>(['stopped', 'error']);
const iso = (d: Date | null) => d?.toISOString() ?? null;

/** Events oldest first, as the timeline shows them (one instant ordered by id). */
const oldestFirst = (events: MachineEvent[]) =>
  events.slice().sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || a.id - b.id);

/** When the row's state began: the latest event that moved into it (a renewal's or a notice's keeps the state). */
function sinceOf(row: MachineRow, events: MachineEvent[]): string {
  const entered = events.findLast((e) => e.toStatus === row.status && e.fromStatus !== row.status);
  if (entered) return entered.occurredAt.toISOString();
  const fallback = row.status === 'running' ? row.startedAt : row.status === 'stopped' ? row.stoppedAt : null;
  return (fallback ?? row.updatedAt).toISOString();
}

/** A workflow runs but has recorded nothing of this run yet: the row (if any) is from an earlier machine. */
function notRecordedYet(live: LiveWorkflow, row: MachineRow | null): boolean {
  if (!row) return true;
  if (live.state !== 'provisioning') return false;
  if (FINAL.has(row.status)) return true; // a new run starts from provisioning, never from a final row
  return row.status !== 'provisioning' && row.updatedAt.getTime() < live.startTime.getTime();
}

/**
 * The status, or null when there is nothing to say (no workflow, no row). `live` is set while a workflow runs:
 * `source: 'workflow'`, and `recent` holds this machine's life only (from its first provisioning); else the row's
 * last recorded state (`source: 'table'`). `lastRenewedAt` is the last check that found the machine healthy (a
 * renewal writes it into the row), while a workflow runs.
 */
export function recordedStatus(input: {
  row: MachineRow | null;
  /** The user's latest events, in any order. */
  events: MachineEvent[];
  live?: LiveWorkflow;
}): RecordedStatus | null {
  const { row, live } = input;
  const events = oldestFirst(input.events);
  if (live && notRecordedYet(live, row))
    return {
      state: live.state ?? 'provisioning',
      machineId: null,
      region: live.region ?? row?.region ?? 'ams',
      since: live.startTime.toISOString(),
      lastHealthyAt: null,
      lastRenewedAt: null,
      reason: null,
      recent: [],
      source: 'workflow',
    };
  if (!row) return null;
  // This machine's life begins where an event left a final state (or the user's first event).
  const begins = live ? events.findLastIndex((e) => e.fromStatus === null || FINAL.has(e.fromStatus)) : -1;
  const shown = begins > 0 ? events.slice(begins) : events;
  const recent = shown.map((e) => ({
    at: e.occurredAt.toISOString(),
    state: e.toStatus,
    ...(e.reason ? { reason: e.reason } : {}),
  }));
  return {
    state: row.status,
    machineId: row.machineId,
    region: row.region,
    since: sinceOf(row, events),
    lastHealthyAt: iso(row.lastHealthyAt),
    lastRenewedAt: live ? iso(row.lastHealthyAt) : null,
    reason: row.errorMessage ?? events.at(-1)?.reason ?? null,
    recent,
    source: live ? 'workflow' : 'table',
  };
}
