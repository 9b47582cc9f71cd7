import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';

/**
 * The machine workflow's contract (DESIGN §3): task queue, ids, input, status and messages. Imported
 * by the workflow, the worker and the API alike, so a rename cannot drift between them.
 */
export const TASK_QUEUE = 'machines';
export const MACHINE_WORKFLOW_TYPE = 'machineLifecycle';
export const machineWorkflowId = (userId: string) => `machine-${userId}`;
/** Deterministic per user: with the metadata tags it makes create idempotent. */
export const flyMachineName = (userId: string) => `ce-${userId}`;

export const machineStates = ['provisioning', 'starting', 'running', 'stopping', 'stopped', 'error'] as const;
export type MachineState = (typeof machineStates)[number];
export const cpuPriorities = ['low', 'normal', 'high'] as const;
export type CpuPriority = (typeof cpuPriorities)[number];

/** Fly region codes are three lowercase letters (ams, iad, sin, …). */
export const regionSchema = z.string().regex(/^[a-z]{3}$/, 'must be a Fly region code such as "ams"');

export const lifecycleSettingsSchema = z.object({
  /** How often the machine is renewed (entitlement, credentials, health). */
  renewalInterval: z.string().default('15 minutes'),
  /** How long a machine keeps running after a failed payment. */
  paymentGracePeriod: z.string().default('3 days'),
  /** Overall deadline for Fly to report `started` (each /wait call is at most 60 s). */
  startDeadlineSeconds: z.number().int().positive().default(300),
  /** Overall deadline for the runtime's /health to answer ok after start. */
  healthDeadlineSeconds: z.number().int().positive().default(180),
  /**
   * Heartbeat timeout of the long activities (waits, cleanup): how soon a worker that died mid-activity
   * is noticed. Tests on the time-skipping server raise it, since that server skips time while activities run.
   */
  activityHeartbeatSeconds: z.number().int().min(5).default(15),
  /** Restarts of a sick machine before giving up with `error`. */
  maxRestarts: z.number().int().min(0).default(2),
  /** Continue-as-new after this many renewals (or sooner when the SDK suggests it). */
  continueAsNewEvery: z.number().int().positive().default(50),
  /** Regions to try, in order, when the first has no capacity. */
  fallbackRegions: z.array(regionSchema).default([]),
});
export type LifecycleSettings = z.infer<typeof lifecycleSettingsSchema>;

export const machineLifecycleInputSchema = z.object({
  userId: z.uuid(),
  region: regionSchema.default('ams'),
  cpuPriority: z.enum(cpuPriorities).default('normal'),
  settings: lifecycleSettingsSchema.partial().optional(),
});
export type MachineLifecycleInput = z.input<typeof machineLifecycleInputSchema> & {
  /** State carried across continue-as-new; absent on the first run. */
  carried?: CarriedState;
};

export interface TimelineEntry {
  at: string;
  state: MachineState;
  reason?: string;
}

/** Everything a new run needs to take over from the previous one. No secrets, ever. */
export interface CarriedState {
  state: MachineState;
  since: string;
  machineId?: string;
  privateAddress?: string;
  tier?: string;
  lastHealthyAt?: string;
  lastRenewedAt?: string;
  reason?: string;
  recent: TimelineEntry[];
  appliedEventIds: string[];
  billing: BillingState;
  tierEventAt?: string;
  renewals: number;
  run: number;
}

export interface BillingState {
  /** Set while a payment is overdue: when the grace period ends (ISO). */
  graceEndsAt?: string;
  /** occurredAt of the newest billing event applied, so older ones arriving late change nothing. */
  lastEventAt?: string;
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
  paymentGraceEndsAt: string | null;
  recent: TimelineEntry[];
}

export const stopRequestSchema = z.object({
  reason: z.string().min(1).max(200).default('user_requested'),
  requestedBy: z.string().min(1).max(200).default('user'),
});
export type StopRequest = z.infer<typeof stopRequestSchema>;

export const tierChangedSchema = z.object({
  eventId: z.string().min(1),
  tier: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
});
export type TierChanged = z.infer<typeof tierChangedSchema>;
export const paymentEventSchema = z.object({
  eventId: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
});
export type PaymentEvent = z.infer<typeof paymentEventSchema>;

/** A signal: the caller (API, operator) need not wait for the machine to stop. */
export const stopSignal = defineSignal<[StopRequest]>('stop');
/** Billing events are signals: the webhook answers at once, the workflow applies each id once. */
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
export const statusQuery = defineQuery<MachineStatus>('status');
/** An update, for callers that want to wait until the machine is really stopped. */
export const stopUpdate = defineUpdate<MachineStatus, [StopRequest]>('stop');
