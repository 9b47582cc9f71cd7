import {
  ApplicationFailure,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { durationMs, type LifecycleSettings } from './contract';

/** A duration setting in ms; a bad one fails the run for good (input is validated where it enters, so only by hand). */
export function ms(duration: string): number {
  const value = durationMs(duration);
  if (value === undefined) throw ApplicationFailure.nonRetryable(`bad duration "${duration}"`, 'InvalidSettings');
  return value;
}

/**
 * Changes to the commands the lifecycle issues, each behind `patched(id)` (worker/README.md): runs whose history
 * predates one replay on the old branch. Remove one only after `deprecatePatch` outlived every open run.
 */
export const PATCHES = {
  /** The default renewal interval went from 15 minutes to 1 hour (contract.ts LEGACY_RENEWAL_INTERVAL). */
  hourlyRenewalDefault: 'renewal-hourly-default',
  /** A renewal's credential push and health check are local activities: the whole renewal is one workflow task. */
  renewalLocal: 'renewal-local-activities',
  /** The `machineSick` signal acts (a signal an older worker received and ignored must stay ignored on replay). */
  machineSick: 'machine-sick-signal',
} as const;

/** `maximumAttempts` undefined: retry until it succeeds (for what must never be left undone). */
const retry = (maximumAttempts?: number): ActivityOptions['retry'] => ({
  initialInterval: '1 second', // Fly allows about 1 request/s per action per machine
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  ...(maximumAttempts ? { maximumAttempts } : {}),
  nonRetryableErrorTypes: ['InvalidSettings'],
});

/**
 * The machine workflow's activities, each kind with a timeout and a retry policy that fits what it
 * does. Heartbeat timeouts are short so that a worker that dies mid-activity is noticed in seconds.
 */
export function lifecycleActivityOptions(settings: LifecycleSettings) {
  return {
    // Local activities: a row write or read takes milliseconds, and running it inside the workflow task
    // saves two server round trips each (bench:storm, bench:overhead). Idempotent per transition id (and
    // per billing event id), so a re-run after a worker crash writes nothing twice.
    store: { startToCloseTimeout: '30 seconds', retry: { ...retry(), maximumInterval: '1 minute' } },
    // Retryable Fly errors (408, 429 with its Retry-After, 5xx) are ridden out until the start deadline,
    // not a fixed number of attempts: a busy Fly (other users' bursts) must not turn a start into `error`.
    fly: {
      startToCloseTimeout: '1 minute',
      scheduleToCloseTimeout: `${settings.startDeadlineSeconds} seconds`,
      retry: retry(),
    },
    probe: { startToCloseTimeout: '30 seconds', retry: retry(3) },
    // The same calls as local activities (a renewal's, a sweep report's check): milliseconds each, so the billing
    // read, the credential push, the health check and the record all complete in one workflow task = one action.
    localProbe: { startToCloseTimeout: '30 seconds', retry: retry(3) },
    waitStarted: {
      startToCloseTimeout: `${settings.startDeadlineSeconds + 90} seconds`,
      heartbeatTimeout: `${settings.activityHeartbeatSeconds} seconds`, // it heartbeats every 2 s, also during a /wait
      retry: retry(3),
    },
    waitHealthy: {
      startToCloseTimeout: `${settings.healthDeadlineSeconds + 30} seconds`,
      heartbeatTimeout: `${settings.activityHeartbeatSeconds} seconds`,
      retry: retry(2),
    },
    // A machine must never be left behind: retry until done.
    cleanup: {
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: `${settings.activityHeartbeatSeconds + 5} seconds`,
      retry: { ...retry(), maximumInterval: '1 minute' },
    },
  } satisfies Record<string, ActivityOptions & LocalActivityOptions>;
}

export type ActivityKind = keyof ReturnType<typeof lifecycleActivityOptions>;

/** `run(kind, name, summary, ...args)`: an activity with the options of its kind and a summary, so the UI reads like a timeline. */
export function activityRunner(settings: LifecycleSettings) {
  const options = lifecycleActivityOptions(settings);
  const remote = proxyActivities<Activities>(options.fly);
  const local = proxyLocalActivities<Activities>(options.store);
  return function run<K extends keyof Activities>(
    kind: ActivityKind,
    name: K,
    summary: string,
    ...args: Parameters<Activities[K]>
  ): Promise<Awaited<ReturnType<Activities[K]>>> {
    const activity = (kind === 'store' || kind === 'localProbe' ? local : remote)[name] as unknown as {
      executeWithOptions(o: ActivityOptions | LocalActivityOptions, a: unknown[]): Promise<unknown>;
    };
    return activity.executeWithOptions({ ...options[kind], summary }, args) as Promise<
      Awaited<ReturnType<Activities[K]>>
    >;
  };
}
