import { z } from 'zod';
import {
  cpuPriorities,
  DURATION_PATTERN,
  LIFECYCLE_DEFAULTS as d,
  type LifecycleSettings,
  type MachineLifecycleRequest,
  type PaymentEvent,
  type StopRequest,
  type TierChanged,
} from './contract';

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
export const machineLifecycleInputSchema = z.object({
  userId: z.uuid(),
  region: regionSchema.default('ams'),
  cpuPriority: z.enum(cpuPriorities).default('normal'),
  settings: lifecycleSettingsSchema.partial().optional(),
});

export const stopRequestSchema = z.object({
  reason: z.string().min(1).max(200).default('user_requested'),
  requestedBy: z.string().min(1).max(200).default('user'),
});

export const tierChangedSchema = z.object({
  eventId: z.string().min(1),
  tier: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
});
export const paymentEventSchema = z.object({
  eventId: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
});

/** Compile-time proof that each schema produces (and, for input, accepts) exactly the contract's plain types. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const exact = <T extends true>(): T | undefined => undefined;
exact<Same<z.output<typeof lifecycleSettingsSchema>, LifecycleSettings>>();
exact<Same<z.input<typeof machineLifecycleInputSchema>, MachineLifecycleRequest>>();
exact<Same<z.output<typeof stopRequestSchema>, StopRequest>>();
exact<Same<z.output<typeof tierChangedSchema>, TierChanged>>();
exact<Same<z.output<typeof paymentEventSchema>, PaymentEvent>>();
