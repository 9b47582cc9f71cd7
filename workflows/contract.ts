import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Entitlement } from '../common/entitlement';
import { machineStates, type MachineState } from '../common/machine-states';

/**
 * The machine workflow's contract (docs/technical-description.md §3): task queue, ids, input, status and messages. Imported
 * by the workflow, the worker and the API alike, so a rename cannot drift between them.
 */
export const TASK_QUEUE = 'machines';
export const MACHINE_WORKFLOW_TYPE = 'machineLifecycle';
export const machineWorkflowId = (userId: string) => `machine-${userId}`;
/** Deterministic per user: with the metadata tags it makes create idempotent. */
export const flyMachineName = (userId: string) => `ce-${userId}`;

export { machineStates, type MachineState };
export const cpuPriorities = ['low', 'normal', 'high'] as const;
export type CpuPriority = (typeof cpuPriorities)[number];

/** Temporal-style durations ("15 minutes", "3 days", "90s"), as the workflow parses them. */
export const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|seconds?|m|minutes?|h|hours?|d|days?)\s*$/i;

/** A duration in ms (deterministic: workflow code uses it), or undefined when it is not one. */
export function durationMs(duration: string): number | undefined {
  const m = DURATION_PATTERN.exec(duration);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor =
    unit.startsWith('ms') || unit.startsWith('milli') ? 1 : { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[unit[0]!]!;
  return Number(m[1]) * factor;
}

/**
 * The workflow's input and messages as plain types. ./schemas.ts validates them with zod where input
 * enters and checks, at compile time, that each schema produces exactly these types.
 */
export interface LifecycleSettings {
  renewalInterval: string;
  paymentGracePeriod: string;
  startDeadlineSeconds: number;
  healthDeadlineSeconds: number;
  activityHeartbeatSeconds: number;
  maxRestarts: number;
  continueAsNewEvery: number;
  fallbackRegions: string[];
}
/** What a caller sends to start a machine (defaults filled in by the schema). */
export interface MachineLifecycleRequest {
  userId: string;
  region?: string;
  cpuPriority?: CpuPriority;
  settings?: Partial<LifecycleSettings>;
}
export interface StopRequest {
  reason: string;
  requestedBy: string;
}
export interface TierChanged {
  eventId: string;
  tier: string;
  occurredAt: string;
}
export interface PaymentEvent {
  eventId: string;
  occurredAt: string;
}

/**
 * Defaults of the workflow's settings. Validation lives in ./schemas.ts (zod) and runs where input
 * enters: the API, the worker's config. Workflow code imports no zod: the SDK instantiates a workflow
 * bundle's modules once per cached workflow, and zod alone costs ~1.1 MB each (measured by bench:fleet).
 */
export const LIFECYCLE_DEFAULTS: LifecycleSettings = {
  // Hourly: a renewal costs billable Temporal actions (bench:cost); a sick machine is found sooner by the
  // fleet-wide health sweep (workflows/health-sweep.ts), not by renewing often.
  renewalInterval: '1 hour',
  paymentGracePeriod: '3 days',
  startDeadlineSeconds: 300,
  healthDeadlineSeconds: 180,
  activityHeartbeatSeconds: 15,
  maxRestarts: 2,
  continueAsNewEvery: 50,
  fallbackRegions: [],
};

/**
 * The default renewal interval before it became hourly. A run that started on it keeps it (its history's timers
 * were set from it, so replay needs it): see the `renewal-hourly-default` patch in ./machine-lifecycle.ts.
 */
export const LEGACY_RENEWAL_INTERVAL = '15 minutes';

/** The settings a run uses: defaults, overridden by what the (already validated) input sets. */
export function lifecycleSettings(overrides: Partial<LifecycleSettings> = {}): LifecycleSettings {
  const set = Object.entries(overrides).filter(([, v]) => v !== undefined);
  return { ...LIFECYCLE_DEFAULTS, ...Object.fromEntries(set) };
}

export type MachineLifecycleInput = MachineLifecycleRequest & {
  /** State carried across continue-as-new; absent on the first run. */
  carried?: CarriedState;
};

export interface TimelineEntry {
  at: string;
  state: MachineState;
  reason?: string;
}

/** Everything a new run needs to take over from the previous one. No secrets, ever; no billing memory either. */
export interface CarriedState {
  state: MachineState;
  since: string;
  machineId?: string;
  lastHealthyAt?: string;
  lastRenewedAt?: string;
  reason?: string;
  recent: TimelineEntry[];
  /**
   * The last read of the stored billing state, for the status query only: every run reads it again at
   * its start, on each billing signal and at each renewal (billing is the user's, in billing_accounts).
   */
  entitlement?: Entitlement;
  /**
   * The image the machine runs, as this workflow last set it (created, restarted, rolled out or rolled
   * back). Restarts and replacements use it; absent (older runs), the worker's FLY_MACHINE_IMAGE.
   */
  image?: string;
  renewals: number;
  run: number;
}

export interface MachineStatus {
  state: MachineState;
  userId: string;
  machineId: string | null;
  region: string;
  since: string;
  lastHealthyAt: string | null;
  lastRenewedAt: string | null;
  reason: string | null;
  tier: string | null;
  paymentState: 'ok' | 'overdue';
  paymentOverdueSince: string | null;
  /** Set while a payment is overdue: when the grace period ends (ISO). */
  paymentGraceEndsAt: string | null;
  recent: TimelineEntry[];
}

/** A signal: the caller (API, operator) need not wait for the machine to stop. */
export const stopSignal = defineSignal<[StopRequest]>('stop');
/**
 * Billing events are nudges: the webhook has recorded and applied the event in billing_accounts; the
 * workflow re-reads that state and acts on it (applying the event first, once by id, if a sender
 * signalled it directly). So duplicates, reordering and replays cannot change the outcome.
 */
export const tierChangedSignal = defineSignal<[TierChanged]>('tierChanged');
export const paymentFailedSignal = defineSignal<[PaymentEvent]>('paymentFailed');
export const paymentRecoveredSignal = defineSignal<[PaymentEvent]>('paymentRecovered');

export interface MachineVanished {
  /** The Fly machine reconcileFleet no longer finds among live machines. */
  machineId: string;
  reason: string;
}
/** A signal from reconcileFleet: the workflow renews at once (and replaces a gone machine) instead of at its next timer. */
export const machineVanishedSignal = defineSignal<[MachineVanished]>('machineVanished');
export interface MachineSick {
  /** The Fly machine the sweep checked (a run that owns another one ignores the signal). */
  machineId: string;
  /** What the sweep saw, one line: "feed disconnected", "fly state stopped", "no answer: …", "machine_gone". */
  reason: string;
  /** When the sweep last found it healthy, as far as it knows (its previous run): where an outage is counted from. */
  healthySince?: string;
}
/**
 * A signal from healthSweep: the machine failed the sweep's health check twice in a row. The workflow checks it
 * with its own health activity at once (a flap restarts nothing) and self-heals if it agrees.
 */
export const machineSickSignal = defineSignal<[MachineSick]>('machineSick');
/** A nudge without an event (reconcileFleet found billing says stop): re-read the stored billing state now. */
export const billingChangedSignal = defineSignal<[{ reason: string }]>('billingChanged');
export const statusQuery = defineQuery<MachineStatus>('status');
/** An update, for callers that want to wait until the machine is really stopped. */
export const stopUpdate = defineUpdate<MachineStatus, [StopRequest]>('stop');

export interface RollImageRequest {
  /** The runtime image to move the machine to. */
  image: string;
}
export interface RollImageResult {
  /**
   * `updated`: healthy on the new image; `rolled_back`: the new image failed, healthy again on the previous
   * one; `failed`: the previous image did not come back either (self-heal took over); `skipped`: nothing done.
   */
  outcome: 'updated' | 'rolled_back' | 'failed' | 'skipped';
  detail: string;
  /** The image the machine runs afterwards, when the workflow knows it. */
  image: string | null;
}
/**
 * An update, from imageRollout: the workflow owns its machine, so only it may change the machine's image. It
 * runs between renewals (never beside one or a self-heal), only while running, and answers how it went.
 */
export const rollImageUpdate = defineUpdate<RollImageResult, [RollImageRequest]>('rollImage');

// --- imageRollout: moves running machines to a new runtime image, a few at a time ------------------------

export const IMAGE_ROLLOUT_WORKFLOW_TYPE = 'imageRollout';
/** One rollout per image: a second start (USE_EXISTING) joins the first. */
export const imageRolloutWorkflowId = (image: string) =>
  `image-rollout-${image.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 200)}`;
export const ROLLOUT_DEFAULTS = { batchSize: 3, maxFailures: 1 };

export interface ImageRolloutRequest {
  image: string;
  /** Machines updated at once (Fly allows about 1 request/s per action per machine; 3 is gentle). */
  batchSize?: number;
  /** Failed machines (rolled back or worse) after which the rollout pauses itself. */
  maxFailures?: number;
}
export type ImageRolloutInput = ImageRolloutRequest & {
  /** Progress carried across continue-as-new; absent on the first run. */
  carried?: RolloutState;
};

/** A machine workflow the rollout moves, as its listing saw it. */
export interface RolloutMachine {
  workflowId: string;
  userId: string;
  /** From the status query (null: it did not answer; the workflow decides when asked). */
  state: string | null;
  machineId: string | null;
  /** Fly's config.image of the machine (null: no such machine in the listing). */
  image: string | null;
}
export interface RolloutFailure {
  workflowId: string;
  machineId: string | null;
  outcome: RollImageResult['outcome'];
  detail: string;
}
/** The rollout's progress: all it carries, and what its status query and result are made of. */
export interface RolloutState {
  image: string;
  batchSize: number;
  maxFailures: number;
  total: number;
  updated: number;
  rolledBack: number;
  /** Machines whose previous image did not come back healthy either (self-heal took over). */
  failed: number;
  skipped: number;
  /** Machines still to update, in order. */
  pending: RolloutMachine[];
  /** The latest failures (bounded). */
  failures: RolloutFailure[];
  paused: boolean;
  pausedBy: 'failures' | 'operator' | null;
  /** Failures counted when last resumed: the pause rule counts only those since. */
  failuresAtResume: number;
}
/** The `rolloutStatus` query's answer, and the rollout's final result (the report). */
export interface RolloutStatus {
  image: string;
  total: number;
  updated: number;
  rolledBack: number;
  failed: number;
  skipped: number;
  pending: number;
  paused: boolean;
  pausedBy: 'failures' | 'operator' | null;
  done: boolean;
  failures: RolloutFailure[];
}

/** A signal: an operator holds the rollout after the batch in flight (machines mid-update finish first). */
export const pauseRolloutSignal = defineSignal<[]>('pauseRollout');
/** A signal: go on after a pause (by an operator or by failures); the failure budget starts again. */
export const resumeRolloutSignal = defineSignal<[]>('resumeRollout');
/** A query: progress so far, the same shape as the final report. */
export const rolloutStatusQuery = defineQuery<RolloutStatus>('rolloutStatus');
