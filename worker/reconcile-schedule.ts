import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsAction,
} from '@temporalio/client';
import { durationMs, TASK_QUEUE } from '../workflows/contract';

/** Parses "10 minutes", "90s", "5m" (the forms the workflow accepts) to seconds. */
export function durationSeconds(duration: string): number {
  const value = durationMs(duration);
  if (value === undefined) throw new Error(`bad duration "${duration}"`);
  return value / 1000;
}

export const RECONCILE_SCHEDULE_ID = 'reconcile-fleet';
/** One schedule per fleet: the default task queue gets the plain id, any other (a test's) its own. */
export const reconcileScheduleId = (taskQueue: string) =>
  taskQueue === TASK_QUEUE ? RECONCILE_SCHEDULE_ID : `${RECONCILE_SCHEDULE_ID}-${taskQueue}`;

/**
 * Creates the reconcileFleet schedule, or brings an existing one up to date (interval, input): safe
 * at every worker start, and when several workers start at once. Overlap SKIP: never two at once
 * from the schedule (two at once would still be safe, only wasteful).
 */
export async function ensureReconcileSchedule(
  client: Client,
  opts: { taskQueue: string; interval: string; minMachineAgeSeconds: number },
): Promise<{ scheduleId: string; created: boolean }> {
  const scheduleId = reconcileScheduleId(opts.taskQueue);
  return ensureIntervalSchedule(client, scheduleId, opts.interval, {
    type: 'startWorkflow',
    workflowType: 'reconcileFleet',
    workflowId: scheduleId,
    taskQueue: opts.taskQueue,
    args: [{ minMachineAgeSeconds: opts.minMachineAgeSeconds }],
    workflowExecutionTimeout: '30 minutes',
  });
}

/**
 * An every-`interval` Schedule of `action`, overlap SKIP: created, or (already there, from an earlier start or
 * another worker starting now) updated to this interval and action. Shared by the reconcile and health sweeps.
 */
export async function ensureIntervalSchedule(
  client: Client,
  scheduleId: string,
  interval: string,
  action: ScheduleOptionsAction,
): Promise<{ scheduleId: string; created: boolean }> {
  const spec = { intervals: [{ every: `${durationSeconds(interval)} seconds` }] };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    });
    return { scheduleId, created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(scheduleId).update((previous) => ({
    ...previous,
    spec,
    action,
    policies: { ...previous.policies, overlap: ScheduleOverlapPolicy.SKIP },
  }));
  return { scheduleId, created: false };
}
