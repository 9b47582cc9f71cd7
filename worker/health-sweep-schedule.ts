import type { Client } from '@temporalio/client';
import { TASK_QUEUE } from '../workflows/contract';
import { HEALTH_SWEEP_WORKFLOW_TYPE, type HealthSweepInput } from '../workflows/health-sweep';
import { durationSeconds, ensureIntervalSchedule } from './reconcile-schedule';

export const HEALTH_SWEEP_SCHEDULE_ID = 'health-sweep';
/**
 * The sweep's default period (HEALTH_SWEEP_INTERVAL): a sick machine is signalled within about one period plus
 * the confirmation (bench:cost measures it, "detection"); each run is ~4 actions for the whole fleet.
 */
export const HEALTH_SWEEP_DEFAULT_INTERVAL = '1 minute';
/** One schedule per fleet: the default task queue gets the plain id, any other (a test's) its own. */
export const healthSweepScheduleId = (taskQueue: string) =>
  taskQueue === TASK_QUEUE ? HEALTH_SWEEP_SCHEDULE_ID : `${HEALTH_SWEEP_SCHEDULE_ID}-${taskQueue}`;

/** Creates the healthSweep schedule, or brings it up to date (period, input), at every worker start. */
export function ensureHealthSweepSchedule(
  client: Client,
  opts: { taskQueue: string; interval: string; input?: HealthSweepInput },
): Promise<{ scheduleId: string; created: boolean }> {
  const scheduleId = healthSweepScheduleId(opts.taskQueue);
  return ensureIntervalSchedule(client, scheduleId, opts.interval, {
    type: 'startWorkflow',
    workflowType: HEALTH_SWEEP_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: opts.taskQueue,
    args: [{ intervalSeconds: durationSeconds(opts.interval), ...opts.input }],
    // A stuck run must not hold the next ones back for long (overlap SKIP skips while one runs).
    workflowExecutionTimeout: '5 minutes',
  });
}
