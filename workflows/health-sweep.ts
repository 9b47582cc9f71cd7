import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';

export const HEALTH_SWEEP_WORKFLOW_TYPE = 'healthSweep';

export interface HealthSweepInput {
  /** The Schedule's period: a sick machine's outage is counted from one period back (its last healthy sweep). */
  intervalSeconds?: number;
  /** Machines checked at once (default 32). */
  concurrency?: number;
  /** A machine sick at the first look is looked at again this much later; only a second failure is reported (default 5). */
  confirmDelaySeconds?: number;
}

export interface SickMachine {
  userId: string;
  workflowId: string;
  machineId: string;
  reason: string;
  /** `signalled`, or why not (`the workflow ended`, `healthy at the second look`). */
  outcome: string;
}

export interface HealthSweepReport {
  /** Running machines (by their rows) checked. */
  checked: number;
  /** Sick at the first look. */
  suspected: number;
  /** Sick twice in a row, with what was done (the first 50). */
  sick: SickMachine[];
  signalled: number;
  durationMs: number;
}

const { sweepFleetHealth } = proxyActivities<Activities>({
  // Well within a period: a sweep that runs long is skipped over by the next one (overlap SKIP), never piled up.
  startToCloseTimeout: '2 minutes',
  // No retry: the next sweep is a period away and does the same. No heartbeats either: each would be an action.
  retry: { maximumAttempts: 1 },
});

/**
 * The fleet's health, every period (a Schedule, `health-sweep`, overlap SKIP): one activity checks every running
 * machine's `/health` at once and signals `machineSick` only to the workflows of machines sick twice in a row; each
 * workflow confirms with its own check before it self-heals. One short run per period for the whole fleet, instead
 * of each machine workflow waking up often (a timer and activities each time are billed per user).
 */
export async function healthSweep(input: HealthSweepInput = {}): Promise<HealthSweepReport> {
  const report = await sweepFleetHealth(input);
  setCurrentDetails(
    `checked ${report.checked} machines in ${report.durationMs} ms: ${report.suspected} suspected, ` +
      `${report.sick.length} sick, ${report.signalled} signalled`,
  );
  return report;
}
