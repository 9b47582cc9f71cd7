import type { temporal } from '@temporalio/proto';

/**
 * Billable Temporal Cloud Actions counted from workflow histories, pure (no server, no I/O), following the rules
 * published at https://docs.temporal.io/cloud/actions (each type's rule is in ACTION_RULES). Only what a history
 * shows is counted here: queries, rejected updates and activity heartbeats never appear in one (see
 * `recordedHeartbeats` and bench/cost-prices.ts for those).
 */

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export const actionTypes = [
  'workflow started',
  'timer started',
  'search attribute upsert',
  'signal',
  'update accepted',
  'activity started',
  'activity retried',
  'local activities (per workflow task)',
  'local activity retried',
  'child workflow',
  'workflow options updated',
  'nexus operation',
  'schedule start',
] as const;
export type ActionType = (typeof actionTypes)[number];
export type ActionCounts = Record<ActionType, number>;

/** Each type's rule, as docs.temporal.io/cloud/actions states it (abridged), and the history event it is read from. */
export const ACTION_RULES: Record<ActionType, string> = {
  'workflow started': 'client start, Continue-As-New, child start; one per WorkflowExecutionStarted (each run)',
  'timer started': 'every TimerStarted, SDK-implicit ones included (`condition(fn, timeout)` in TypeScript)',
  'search attribute upsert':
    'one per UpsertWorkflowSearchAttributes command (however many keys); those at start and TemporalChangeVersion excluded',
  signal: 'every signal sent (client or workflow): one per WorkflowExecutionSignaled',
  'update accepted':
    'every accepted (and rejected) update: one per WorkflowExecutionUpdateAccepted; rejected are not in history',
  'activity started': 'each activity start: one per ActivityTaskScheduled',
  'activity retried': 'each retry: ActivityTaskStarted.attempt − 1',
  'local activities (per workflow task)':
    'all local activities of one workflow task = one action: MarkerRecorded (core_local_activity) grouped by workflow task',
  'local activity retried': 'WorkflowTaskCompleted.meteringMetadata.nonfirstLocalActivityExecutionAttempts',
  'child workflow': 'StartChildWorkflowExecutionInitiated: two (the intent and the start)',
  'workflow options updated': 'one per WorkflowExecutionOptionsUpdated',
  'nexus operation': 'one per NexusOperationScheduled or NexusOperationCancelRequested',
  'schedule start': 'a Schedule execution is three actions: two for the schedule start (here) + the workflow start',
};

export const LOCAL_ACTIVITY_MARKER = 'core_local_activity';
const EXEMPT_SEARCH_ATTRIBUTES = new Set(['TemporalChangeVersion']);

export const emptyCounts = (): ActionCounts => Object.fromEntries(actionTypes.map((t) => [t, 0])) as ActionCounts;

export const totalActions = (c: ActionCounts) => actionTypes.reduce((a, t) => a + c[t], 0);

export function addCounts(a: ActionCounts, b: ActionCounts): ActionCounts {
  return Object.fromEntries(actionTypes.map((t) => [t, a[t] + b[t]])) as ActionCounts;
}

/** A protobuf int64 as the client decodes it (Long, string or number). */
export function int64(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'object' && 'toNumber' in v && typeof v.toNumber === 'function') return Number(v.toNumber());
  return Number(v);
}

/** An event's time in ms since the epoch (0 when absent). */
export function eventTimeMs(e: HistoryEvent): number {
  const t = e.eventTime;
  return t ? int64(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/** Billable actions in one run's history, by type. */
export function countRunActions(history: History): ActionCounts {
  const c = emptyCounts();
  const laTasks = new Set<string>();
  for (const e of history.events ?? []) {
    const started = e.workflowExecutionStartedEventAttributes;
    if (started) {
      c['workflow started']++;
      if (started.searchAttributes?.indexedFields?.TemporalScheduledById) c['schedule start'] += 2;
    }
    if (e.timerStartedEventAttributes) c['timer started']++;
    const upsert = e.upsertWorkflowSearchAttributesEventAttributes;
    if (upsert) {
      const keys = Object.keys(upsert.searchAttributes?.indexedFields ?? {});
      if (keys.length === 0 || keys.some((k) => !EXEMPT_SEARCH_ATTRIBUTES.has(k))) c['search attribute upsert']++;
    }
    if (e.workflowExecutionSignaledEventAttributes) c.signal++;
    if (e.workflowExecutionUpdateAcceptedEventAttributes) c['update accepted']++;
    if (e.activityTaskScheduledEventAttributes) c['activity started']++;
    const attempt = e.activityTaskStartedEventAttributes?.attempt;
    if (attempt && attempt > 1) c['activity retried'] += attempt - 1;
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === LOCAL_ACTIVITY_MARKER) laTasks.add(String(int64(marker.workflowTaskCompletedEventId)));
    const metering = e.workflowTaskCompletedEventAttributes?.meteringMetadata;
    if (metering?.nonfirstLocalActivityExecutionAttempts)
      c['local activity retried'] += metering.nonfirstLocalActivityExecutionAttempts;
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) c['child workflow'] += 2;
    if (e.workflowExecutionOptionsUpdatedEventAttributes) c['workflow options updated']++;
    if (e.nexusOperationScheduledEventAttributes || e.nexusOperationCancelRequestedEventAttributes)
      c['nexus operation']++;
  }
  c['local activities (per workflow task)'] = laTasks.size;
  return c;
}

/** Billable actions of a whole continue-as-new chain, by type, and what else its histories hold. */
export function countChainActions(chain: History[]) {
  let actions = emptyCounts();
  let events = 0;
  let workflowTasks = 0;
  for (const h of chain) {
    actions = addCounts(actions, countRunActions(h));
    events += h.events?.length ?? 0;
    workflowTasks += (h.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length;
  }
  return { actions, runs: chain.length, events, workflowTasks };
}

/**
 * History storage in GB-hours over [start of each run, `untilMs`]: active while a run is open (each event counted
 * from when it was written until the run closed, or until `untilMs` for the open one), retained for
 * `retentionDays` after a run closed. Bytes per event come from `sizeOf` (the encoded protobuf).
 */
export function storageGbHours(
  chain: History[],
  sizeOf: (e: HistoryEvent) => number,
  opts: { untilMs: number; retentionDays: number },
) {
  let activeByteMs = 0;
  let closedBytes = 0;
  let totalBytes = 0;
  for (const h of chain) {
    const events = h.events ?? [];
    const last = events[events.length - 1];
    const closed = !!last && isCloseEvent(last);
    const end = closed ? eventTimeMs(last) : opts.untilMs;
    let bytes = 0;
    for (const e of events) {
      const size = sizeOf(e);
      bytes += size;
      activeByteMs += size * Math.max(0, end - eventTimeMs(e));
    }
    totalBytes += bytes;
    if (closed) closedBytes += bytes;
  }
  const GB = 1024 ** 3;
  const HOUR = 3_600_000;
  return {
    totalBytes,
    closedBytes,
    activeGbHours: activeByteMs / GB / HOUR,
    /** Each closed run's history kept `retentionDays` (in steady state, what a month's closed runs accrue). */
    retainedGbHours: (closedBytes / GB) * opts.retentionDays * 24,
  };
}

function isCloseEvent(e: HistoryEvent): boolean {
  return !!(
    e.workflowExecutionCompletedEventAttributes ||
    e.workflowExecutionContinuedAsNewEventAttributes ||
    e.workflowExecutionFailedEventAttributes ||
    e.workflowExecutionTerminatedEventAttributes ||
    e.workflowExecutionCanceledEventAttributes ||
    e.workflowExecutionTimedOutEventAttributes
  );
}

/**
 * The heartbeats of one activity attempt that reach the server, from the times (ms) the activity called
 * `heartbeat()`: the SDK sends the first at once and then at most one per `throttleMs`, the latest one held
 * back until its window ends (sent then if the attempt still runs at `endMs`). Only those reach the server and
 * are billed ("throttled heartbeats don't count").
 */
export function recordedHeartbeats(callsMs: number[], endMs: number, throttleMs: number): number {
  let sent = 0;
  let lastSent = -Infinity;
  let pending = false;
  const flush = (t: number) => {
    while (pending && lastSent + throttleMs <= t) {
      sent++;
      lastSent += throttleMs;
      pending = false;
    }
  };
  for (const t of [...callsMs].sort((a, b) => a - b)) {
    flush(t);
    if (t >= lastSent + throttleMs) {
      sent++;
      lastSent = t;
    } else pending = true;
  }
  flush(endMs);
  return sent;
}

/**
 * The TypeScript SDK's heartbeat throttle for an activity: 80 % of its heartbeat timeout, capped by the worker's
 * `maxHeartbeatThrottleInterval`; without a heartbeat timeout, the worker's `defaultHeartbeatThrottleInterval`.
 */
export function heartbeatThrottleMs(
  heartbeatTimeoutMs: number | undefined,
  worker: { maxThrottleMs: number; defaultThrottleMs: number },
): number {
  if (!heartbeatTimeoutMs) return worker.defaultThrottleMs;
  return Math.min(0.8 * heartbeatTimeoutMs, worker.maxThrottleMs);
}
