import { metricMeter } from '@temporalio/workflow';
import type { MachineState } from './contract';

/**
 * The lifecycle's own metrics, through the SDK's workflow `metricMeter`: they land on the worker's
 * Prometheus endpoint next to the SDK's (docs/operations.md lists them). Replay-safe: the SDK drops every
 * value recorded while a workflow replays, and a metric is no command, so history is unchanged. Labels are
 * bounded (states, outcomes, causes), never a user or machine id.
 */

export const metricNames = {
  transitions: 'cloud_execution_machine_transitions_total',
  renewals: 'cloud_execution_renewals_total',
  selfHeals: 'cloud_execution_self_heals_total',
  provisioningSeconds: 'cloud_execution_provisioning_seconds',
} as const;

/** Bucket bounds (seconds) of the provisioning histogram: a few seconds locally, minutes on a slow Fly day. */
export const provisioningBuckets = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

export type RenewalOutcome = 'ok' | 'stopped';
export type HealCause = 'machine_gone' | 'fly_state' | 'no_answer' | 'runtime_unhealthy' | 'restart_failed';

/**
 * Why a machine needed healing, as a label: the health check's reason (or that the previous restart itself
 * failed) folded into a few causes, since reasons carry free text.
 */
export function healCause(reason: string | undefined, previousAttemptFailed: boolean): HealCause {
  if (previousAttemptFailed) return 'restart_failed';
  if (reason === 'machine_gone') return 'machine_gone';
  if (reason?.startsWith('fly state ')) return 'fly_state';
  if (reason?.startsWith('no answer')) return 'no_answer';
  return 'runtime_unhealthy';
}

/** Call only from workflow code (the meter needs the workflow context). */
export const lifecycleMetrics = {
  /** A machine entered `state` (its first transition, or a change of state). */
  entered(state: MachineState) {
    metricMeter.createCounter(metricNames.transitions, '', 'machine state transitions, by the state entered').add(1, {
      state,
    });
  },
  /** One renewal round done: `ok` (the machine runs on, healed or not) or `stopped` (it ends the machine). */
  renewed(outcome: RenewalOutcome) {
    metricMeter.createCounter(metricNames.renewals, '', 'renewal rounds, by outcome').add(1, { outcome });
  },
  /** A self-heal attempt: a restart of a sick machine, or the replacement of a vanished one. */
  healing(cause: HealCause, action: 'restart' | 'replace') {
    metricMeter.createCounter(metricNames.selfHeals, '', 'self-heal attempts, by cause').add(1, { cause, action });
  },
  /** From `provisioning` to the first `running`, in seconds of workflow time. */
  provisioned(seconds: number) {
    metricMeter
      .createHistogram(metricNames.provisioningSeconds, 'float', 's', 'from provisioning to running')
      .record(Math.max(0, seconds));
  },
};
