import { entitlement, instant, type BillingFacts, type Entitlement } from '../common/entitlement';
import type { SignalledBillingEvent } from '../activities/store-activities';
import type { MachineSick, MachineState, StopRequest } from './contract';

/**
 * The decisions of `machineLifecycle`, as pure functions: what a message does, when to wake, what to
 * do next, what billing and a renewal mean, how a run ends. The workflow only carries them out, so
 * each rule is tested as inputs → outputs (lifecycle-rules.unit.test.ts) without a server. Deterministic:
 * no clock, no I/O; "now" is an argument.
 */

export type Final = 'stopped' | 'error';
export interface StopDecision {
  /** A reason code (workflows/README.md). */
  reason: string;
  final: Final;
}

/** Messages received and not yet acted on. */
export interface Inbox {
  /** The first stop request wins: a second one (say, a downgrade after the user's stop) changes nothing. */
  stop?: StopRequest;
  /** Billing events signalled since the last read: nudges to re-read the stored billing state. */
  billing: SignalledBillingEvent[];
  /** A nudge with no event (billingChanged): re-read the stored billing state. */
  recheck: boolean;
  /** reconcileFleet found the machine gone: renew now instead of at the timer. */
  renewNow: boolean;
  /** The health sweep found the machine sick: check it now (the latest report; absent in older runs' inboxes). */
  sick?: Omit<MachineSick, 'machineId'>;
  /** rollImage updates waiting for the loop, oldest first (each answered when carried out). */
  rolls: RollRequest[];
}

/** A rollImage update as the loop sees it: `id` pairs it with the handler waiting for the answer. */
export interface RollRequest {
  id: number;
  image: string;
}

export const emptyInbox = (): Inbox => ({ billing: [], recheck: false, renewNow: false, rolls: [] });

// --- what a message does ------------------------------------------------------------------------------

export function onStop(inbox: Inbox, req: Partial<StopRequest>): Inbox {
  if (inbox.stop) return inbox;
  return { ...inbox, stop: { reason: req.reason ?? 'user_requested', requestedBy: req.requestedBy ?? 'user' } };
}

/** A billing signal queues its event for the next read; the same id twice is one. */
export function onBillingEvent(inbox: Inbox, e: SignalledBillingEvent): Inbox {
  if (inbox.billing.some((b) => b.eventId === e.eventId)) return inbox;
  return { ...inbox, billing: [...inbox.billing, e].slice(-100) };
}

/** Only about the machine this run owns, and only while running: a restart in progress already handles it. */
export function onMachineVanished(inbox: Inbox, vanishedId: string, own: { machineId?: string; state: string }): Inbox {
  return vanishedId === own.machineId && own.state === 'running' ? { ...inbox, renewNow: true } : inbox;
}

/** Like a vanished machine: only about the machine this run owns, and only while running (a self-heal is under way otherwise). */
export function onMachineSick(inbox: Inbox, m: MachineSick, own: { machineId?: string; state: string }): Inbox {
  if (m.machineId !== own.machineId || own.state !== 'running') return inbox;
  return { ...inbox, sick: { reason: m.reason, ...(m.healthySince ? { healthySince: m.healthySince } : {}) } };
}

/**
 * Where an outage the sweep found is counted from (the uptime ledger's `downSince`): the later of the last renewal
 * (a check that found it healthy) and the sweep's own last healthy sighting, if it gave one.
 */
export function outageSince(lastRenewedAt: string, healthySince: string | undefined): string {
  return healthySince && instant(healthySince) > instant(lastRenewedAt) ? healthySince : lastRenewedAt;
}

/** A rollImage update waits its turn in the loop: never beside a renewal, a self-heal or a billing read. */
export const onRollImage = (inbox: Inbox, req: RollRequest): Inbox => ({ ...inbox, rolls: [...inbox.rolls, req] });

export type RollDecision = { kind: 'roll' } | { kind: 'wait' } | { kind: 'skip'; detail: string };

/**
 * What a rollImage update for `image` means now. At receipt: `skip` is answered at once, `wait` and `roll`
 * queue it (a machine still provisioning or self-healing gets its turn once running). At its turn in the
 * loop only `roll` runs; `wait` there means it is not running after all, and is answered as skipped.
 */
export function rollImageDecision(
  own: { state: MachineState; image?: string; machineId?: string },
  image: string,
  ending: boolean,
): RollDecision {
  if (ending) return { kind: 'skip', detail: 'the workflow is ending' };
  if (own.state === 'stopping' || own.state === 'stopped' || own.state === 'error')
    return { kind: 'skip', detail: `not running (${own.state})` };
  if (own.image === image) return { kind: 'skip', detail: `already on ${image}` };
  if (own.state !== 'running' || !own.machineId) return { kind: 'wait' };
  return { kind: 'roll' };
}

// --- when to wake, what to do next ---------------------------------------------------------------------

export interface Clock {
  now: number;
  /** When the last renewal (or the start) happened, ISO. */
  lastRenewedAt: string;
  renewalIntervalMs: number;
  /** The stored grace end, while a payment is overdue. */
  graceEndsAt: string | null;
}

/** The next renewal, or the end of the grace period if that comes first. */
export function wakeAt(c: Clock): number {
  const renewal = instant(c.lastRenewedAt) + c.renewalIntervalMs;
  const grace = c.graceEndsAt ? instant(c.graceEndsAt) : Infinity;
  return Math.min(renewal, grace);
}

export type Step =
  | { kind: 'stop'; decision: StopDecision }
  | { kind: 'readBilling' }
  | { kind: 'renew' }
  | { kind: 'rollImage' }
  | { kind: 'checkHealth' }
  | { kind: 'continueAsNew' }
  | { kind: 'wait'; untilMs: number };

/**
 * What the renewal loop does next. Order matters: a stop beats everything; billing is re-read (never
 * decided from a signal's payload) before anything else; the grace end is a reason to re-read, not to
 * stop — a recovery stored meanwhile must win over a lost signal.
 */
export function nextStep(
  inbox: Inbox,
  c: Clock,
  run: {
    /** Whether this run has read the stored billing state yet (a new run always does first). */
    billingRead: boolean;
    renewals: number;
    renewedThisRun: number;
    continueAsNewEvery: number;
    continueAsNewSuggested: boolean;
  },
): Step {
  if (inbox.stop) return { kind: 'stop', decision: { reason: inbox.stop.reason, final: 'stopped' } };
  if (!run.billingRead || inbox.billing.length > 0 || inbox.recheck) return { kind: 'readBilling' };
  if (c.graceEndsAt && c.now >= instant(c.graceEndsAt)) return { kind: 'readBilling' };
  // Before continue-as-new: an accepted update must be answered by the run that accepted it.
  if (inbox.rolls.length > 0) return { kind: 'rollImage' };
  // Before continue-as-new too: a report of a sick machine is not carried across, and it must not wait an hour.
  if (inbox.sick) return { kind: 'checkHealth' };
  if (run.continueAsNewSuggested) return { kind: 'continueAsNew' };
  if (run.renewedThisRun > 0 && run.renewals % run.continueAsNewEvery === 0) return { kind: 'continueAsNew' };
  if (inbox.renewNow || c.now >= instant(c.lastRenewedAt) + c.renewalIntervalMs) return { kind: 'renew' };
  return { kind: 'wait', untilMs: wakeAt(c) };
}

/** Whether a message arrived that the loop must act on before its timer. */
export const hasNews = (inbox: Inbox, continueAsNewSuggested: boolean) =>
  !!inbox.stop ||
  inbox.billing.length > 0 ||
  inbox.recheck ||
  inbox.renewNow ||
  !!inbox.sick ||
  inbox.rolls.length > 0 ||
  continueAsNewSuggested;

// --- what billing means ----------------------------------------------------------------------------------

export interface BillingVerdict {
  entitlement: Entitlement;
  /** Set when the machine must stop: `downgraded` or `payment_overdue`. */
  stop?: StopDecision;
  /** An audit line for a change the user should hear about (the grace period opened or closed). */
  notice?: string;
}

/** What a fresh read of the stored billing state means for a machine that runs (or is about to). */
export function billingVerdict(previous: Entitlement | undefined, facts: BillingFacts, now: number): BillingVerdict {
  const e = entitlement(facts, now);
  if (!e.entitled)
    return {
      entitlement: e,
      stop: { reason: e.denied === 'payment_overdue' ? 'payment_overdue' : 'downgraded', final: 'stopped' },
    };
  const wasOverdue = previous?.paymentState === 'overdue';
  if (e.paymentState === 'overdue' && (!wasOverdue || previous?.graceEndsAt !== e.graceEndsAt))
    return { entitlement: e, notice: `payment_failed: grace until ${e.graceEndsAt}` };
  if (wasOverdue && e.paymentState === 'ok') return { entitlement: e, notice: 'payment_recovered' };
  return { entitlement: e };
}

/** During a start: the stop a fresh read of billing calls for, if any (the start is then cancelled). */
export function stopDuringStart(facts: BillingFacts, now: number): StopRequest | undefined {
  const e = entitlement(facts, now);
  if (e.entitled) return undefined;
  return { reason: e.denied === 'payment_overdue' ? 'payment_overdue' : 'downgraded', requestedBy: 'billing' };
}

/** At provisioning: a user who is not entitled gets no machine (reason `not_entitled`, or `payment_overdue`). */
export function provisionVerdict(facts: BillingFacts, now: number): { entitlement: Entitlement; refuse?: string } {
  const e = entitlement(facts, now);
  if (e.entitled) return { entitlement: e };
  return { entitlement: e, refuse: e.denied === 'payment_overdue' ? 'payment_overdue' : 'not_entitled' };
}

// --- what a renewal's health check means -----------------------------------------------------------------

export type Repair =
  { kind: 'healthy' } | { kind: 'replace' } | { kind: 'restart' } | { kind: 'give up'; decision: StopDecision };

/**
 * After a failed health check (or a failed repair attempt `attempt - 1`): replace a machine that is
 * gone, restart a sick one, and after `maxRestarts` attempts stop with `error`.
 */
export function repairFor(health: { ok: boolean; reason?: string }, attempt: number, maxRestarts: number): Repair {
  if (health.ok) return { kind: 'healthy' };
  const reason = health.reason ?? 'unhealthy';
  if (attempt > maxRestarts)
    return {
      kind: 'give up',
      decision: { reason: `unhealthy after ${maxRestarts} restarts: ${reason}`, final: 'error' },
    };
  return reason === 'machine_gone' ? { kind: 'replace' } : { kind: 'restart' };
}

// --- how a run ends early --------------------------------------------------------------------------------

/**
 * A run that ends by an exception (cancelled from the UI, not entitled, a step out of retries): the
 * reason recorded and whether that is a clean stop or an error.
 */
export function earlyEnd(err: { cancelled: boolean; type?: string; message: string }): StopDecision {
  if (err.cancelled) return { reason: 'cancelled', final: 'stopped' };
  if (err.type === 'NotEntitled') return { reason: err.message, final: 'stopped' };
  return { reason: err.message, final: 'error' };
}
