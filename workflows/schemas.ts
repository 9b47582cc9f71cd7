import { z } from 'zod';
import { cpuPriorities, DURATION_PATTERN, LIFECYCLE_DEFAULTS as d } from './contract';

/**
 * zod schemas of the workflow's input and messages, for the places input enters (API, webhooks, worker
 * config). Workflow code imports this module as types only: see LIFECYCLE_DEFAULTS in ./contract.ts.
 */

/** Fly region codes are three lowercase letters (ams, iad, sin, …). */
export const regionSchema = z.string().regex(/^[a-z]{3}$/, 'must be a Fly region code such as "ams"');

/** The workflow parses durations like "15 minutes", "3 days", "90s": refuse anything else where input enters, not mid-run. */
export const durationSchema = z
  .string()
  .regex(DURATION_PATTERN, 'must be a duration such as "15 minutes", "3 days" or "90s"');

export const lifecycleSettingsSchema = z.object({
  /** How often the machine is renewed (entitlement, credentials, health). */
  renewalInterval: durationSchema.default(d.renewalInterval),
  /** How long a machine keeps running after a failed payment. */
  paymentGracePeriod: durationSchema.default(d.paymentGracePeriod),
  /** Overall deadline for Fly to report `started` (each /wait call is at most 60 s). */
  startDeadlineSeconds: z.number().int().positive().default(d.startDeadlineSeconds),
  /** Overall deadline for the runtime's /health to answer ok after start. */
  healthDeadlineSeconds: z.number().int().positive().default(d.healthDeadlineSeconds),
  /**
   * Heartbeat timeout of the long activities (waits, cleanup): how soon a worker that died mid-activity
   * is noticed. Tests on the time-skipping server raise it, since that server skips time while activities run.
   */
  activityHeartbeatSeconds: z.number().int().min(5).default(d.activityHeartbeatSeconds),
  /** Restarts of a sick machine before giving up with `error`. */
  maxRestarts: z.number().int().min(0).default(d.maxRestarts),
  /** Continue-as-new after this many renewals (or sooner when the SDK suggests it). */
  continueAsNewEvery: z.number().int().positive().default(d.continueAsNewEvery),
  /** Regions to try, in order, when the first has no capacity. */
  fallbackRegions: z.array(regionSchema).default(d.fallbackRegions),
}) satisfies z.ZodType<LifecycleSettings>;
/** Written out (not inferred) so that ./contract.ts can type its defaults without a cycle; the schema must satisfy it. */
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

export const machineLifecycleInputSchema = z.object({
  userId: z.uuid(),
  region: regionSchema.default('ams'),
  cpuPriority: z.enum(cpuPriorities).default('normal'),
  settings: lifecycleSettingsSchema.partial().optional(),
});
export type MachineLifecycleRequest = z.input<typeof machineLifecycleInputSchema>;

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
