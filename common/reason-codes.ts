/**
 * The one closed vocabulary of reason codes (docs/technical-description.md, "Reason codes"): every transition the
 * machine workflow records, every timeline entry and the Temporal UI's current details carry one. A code says
 * *why* in a word the code can switch on; the free text beside it (the transition's `reason`, a billing event's
 * detail) says the particulars. Pure and dependency-free: workflow code imports it (eslint.config.mjs).
 *
 * Each code has the timeline kind it belongs to, the cause of downtime it stands for (for the uptime ledger,
 * common/uptime-ledger.ts; null: it causes none by itself) and a one-line meaning.
 */

export type TimelineKind = 'lifecycle' | 'billing' | 'health' | 'rollout' | 'operator';
/** Whose downtime: ours (our code, our decisions), Fly's, the user's own stop, or billing's. */
export type DowntimeCause = 'ours' | 'fly' | 'user' | 'billing';

interface CodeInfo {
  kind: TimelineKind;
  cause: DowntimeCause | null;
  meaning: string;
}
const code = (kind: TimelineKind, cause: DowntimeCause | null, meaning: string): CodeInfo => ({ kind, cause, meaning });

export const REASON_CODES = {
  // --- a machine's life --------------------------------------------------------------------------------
  start_requested: code(
    'lifecycle',
    null,
    'a start was asked for (the user, or billing restarting it after a recovery)',
  ),
  machine_created: code(
    'lifecycle',
    null,
    'the Fly machine exists (created or adopted); it must start and answer /health',
  ),
  healthy: code('lifecycle', null, 'running and healthy for the first time since the start'),
  user_requested: code('lifecycle', 'user', 'the user stopped the machine (Stop, POST /v1/machines/me/stop)'),
  not_entitled: code('lifecycle', 'billing', 'a start for a user who is not on the elite tier: no machine'),
  step_failed: code('lifecycle', 'ours', 'a step (starting or renewing) ran out of retries; its machine was destroyed'),
  other: code('lifecycle', null, 'a reason outside this vocabulary (a hand-sent stop, an old row): see its text'),
  // --- billing -----------------------------------------------------------------------------------------
  downgraded: code('billing', 'billing', 'the effective tier is no longer elite: the machine stops'),
  upgraded: code('billing', null, 'a tier change to elite was applied (a machine is started by the user)'),
  payment_failed: code('billing', null, 'a payment failed: the machine runs on until the grace period ends'),
  payment_overdue: code('billing', 'billing', 'the grace period ended unpaid: the machine stops until a recovery'),
  payment_recovered: code(
    'billing',
    null,
    'the payment recovered: the grace period is closed (a stopped machine restarts)',
  ),
  billing_older: code('billing', null, 'a billing event ignored: older than what the account already reflects'),
  billing_duplicate: code('billing', null, 'a billing event ignored: its id was received before'),
  billing_unknown_user: code('billing', null, 'a billing event ignored: no such user'),
  // --- health and self-heal --------------------------------------------------------------------------------
  recovered: code('health', null, 'healthy again after a self-heal (a restart or a replacement)'),
  'unhealthy:feed_idle': code(
    'health',
    'ours',
    'the runtime evaluated nothing for too long: its market feed went idle',
  ),
  'unhealthy:feed_disconnected': code('health', 'ours', 'the runtime lost its market feed connection'),
  'unhealthy:warming_up': code('health', 'ours', 'the runtime was still warming its streams up'),
  'unhealthy:traders_not_loaded': code('health', 'ours', 'the runtime could not load the traders'),
  'unhealthy:trader_reload_failing': code('health', 'ours', 'the runtime could not reload changed traders'),
  'unhealthy:store_unreachable': code('health', 'ours', 'the runtime could not write trade signals'),
  'unhealthy:token_expired': code('health', 'ours', "the machine's user token expired (renewal did not reach it)"),
  'unhealthy:no_answer': code('health', 'ours', 'the runtime did not answer /health'),
  'unhealthy:process_exited': code('health', 'ours', "the runtime's process ended: Fly reports the machine stopped"),
  'unhealthy:start_timeout': code('health', 'ours', 'the machine did not become healthy within the deadline'),
  'unhealthy:restart_failed': code('health', 'ours', 'a self-heal restart failed; the next attempt follows'),
  'unhealthy:other': code('health', 'ours', 'the runtime reported another problem: see its text'),
  machine_gone: code('health', 'fly', 'Fly no longer has the machine (destroyed or unknown): it is replaced'),
  fly_host_failure: code('health', 'fly', 'Fly reports the machine failed, or in a state nobody asked for'),
  fly_api_outage: code('health', 'fly', 'the Fly Machines API failed (no answer, 429 or 5xx) past every retry'),
  // --- image rollouts --------------------------------------------------------------------------------------
  image_rollout: code('rollout', 'ours', 'moving to a new runtime image (rollImage update), or healthy on it'),
  rollout_rollback: code('rollout', 'ours', 'the new image did not get healthy: back to the previous one'),
  // --- operators and the fleet's upkeep ------------------------------------------------------------------
  operator_stop: code('operator', 'ours', 'an operator stopped the machine (ops stop, ops force-stop)'),
  operator_cancel: code('operator', 'ours', 'the workflow was cancelled from the Temporal UI (cleanup still ran)'),
  reconcile_orphan: code('operator', null, 'reconcile destroyed a Fly machine no workflow owned'),
  reconcile_duplicate: code('operator', null, "reconcile destroyed a second machine beside the workflow's own"),
  reconcile_stale_row: code('operator', 'ours', 'reconcile found the row active with no workflow running: ended'),
  reconcile_row_repaired: code('operator', null, 'reconcile corrected a row to what the workflow says'),
  reconcile_billing: code('operator', null, 'reconcile found billing says stop and nudged the workflow'),
} as const satisfies Record<string, CodeInfo>;

export type ReasonCode = keyof typeof REASON_CODES;
export const reasonCodes = Object.keys(REASON_CODES) as ReasonCode[];

export const isReasonCode = (v: unknown): v is ReasonCode => typeof v === 'string' && Object.hasOwn(REASON_CODES, v);
export const meaningOf = (c: ReasonCode): string => REASON_CODES[c].meaning;
export const causeOf = (c: ReasonCode): DowntimeCause | null => REASON_CODES[c].cause;
export const kindOf = (c: ReasonCode): TimelineKind => REASON_CODES[c].kind;

/** The runtime's /health reasons (machine-runtime/health.ts), first match wins. */
const RUNTIME_REASONS: [RegExp, ReasonCode][] = [
  [/no evaluation for|feed idle/i, 'unhealthy:feed_idle'],
  [/feed disconnected/i, 'unhealthy:feed_disconnected'],
  [/traders not loaded/i, 'unhealthy:traders_not_loaded'],
  [/trader reload failing/i, 'unhealthy:trader_reload_failing'],
  [/store unreachable/i, 'unhealthy:store_unreachable'],
  [/user token expired/i, 'unhealthy:token_expired'],
  [/warming up/i, 'unhealthy:warming_up'],
];

/** A Fly Machines API failure that is Fly's (fly/errors.ts messages): no answer, rate limited, 5xx. */
const FLY_OUTAGE = /^Fly \w+ failed: (no answer|HTTP (429|5\d\d))/;

/**
 * What a health report's reason (activities/health-activities.ts), or a failed repair's message, stands for.
 * Fly's "stopped" counts as ours: the runtime's process ended (a crash); other states nobody asked for as Fly's.
 */
export function healthCode(reason: string | undefined): ReasonCode {
  const r = (reason ?? '').trim();
  if (r === 'machine_gone') return 'machine_gone';
  const fly = /^fly state (\S+)/.exec(r);
  if (fly)
    return ['stopped', 'suspended', 'stopping'].includes(fly[1]!) ? 'unhealthy:process_exited' : 'fly_host_failure';
  if (/^no answer/.test(r)) return 'unhealthy:no_answer';
  if (/did not become healthy within/.test(r)) return 'unhealthy:start_timeout';
  if (FLY_OUTAGE.test(r)) return 'fly_api_outage';
  if (/^rollback to .* failed/.test(r)) return 'rollout_rollback';
  return RUNTIME_REASONS.find(([re]) => re.test(r))?.[1] ?? 'unhealthy:other';
}

/** Reconcile's reasons (activities/reconcile-activities.ts). */
function reconcileCode(r: string): ReasonCode {
  if (/destroyed orphan/.test(r)) return 'reconcile_orphan';
  if (/destroyed duplicate/.test(r)) return 'reconcile_duplicate';
  if (/vanished/.test(r)) return 'machine_gone';
  if (/billing says stop/.test(r)) return 'reconcile_billing';
  if (/but no workflow runs/.test(r)) return 'reconcile_stale_row';
  return 'reconcile_row_repaired';
}

/** A stop decision's reason (workflows/lifecycle-rules.ts: the inbox's stop, billing, earlyEnd, self-heal giving up). */
export function stopCode(reason: string): ReasonCode {
  if (isReasonCode(reason) && ['user_requested', 'downgraded', 'payment_overdue', 'not_entitled'].includes(reason))
    return reason;
  if (reason === 'cancelled') return 'operator_cancel';
  if (/^operator\b/.test(reason)) return 'operator_stop';
  const gaveUp = /^unhealthy after \d+ restarts: (.*)$/s.exec(reason);
  if (gaveUp) return healthCode(gaveUp[1]);
  if (FLY_OUTAGE.test(reason)) return 'fly_api_outage';
  if (/^Fly \w+ failed|did not become healthy|timed? ?out/i.test(reason)) return 'step_failed';
  return 'other';
}

/**
 * The code of a recorded transition, from its state and reason (both as the workflow, reconcile and the ops CLI
 * write them). The workflow sends it with every transition; rows written before codes existed get theirs here.
 */
export function transitionCode(state: string, reason: string | null | undefined): ReasonCode {
  const r = (reason ?? '').trim();
  if (isReasonCode(r)) return r;
  if (r.startsWith('reconcile:')) return reconcileCode(r);
  if (r.startsWith('image_rollout:')) return /failed \(|rolled back to/.test(r) ? 'rollout_rollback' : 'image_rollout';
  const restart = /^restart \d+\/\d+: (.*)$/s.exec(r);
  if (restart) return healthCode(restart[1]);
  if (r.startsWith('payment_failed')) return 'payment_failed';
  if (r === 'requested') return 'start_requested';
  if (/^fly machine \S+/.test(r)) return 'machine_created';
  if (r === '') return state === 'running' ? 'healthy' : 'other';
  if (['stopping', 'stopped', 'error'].includes(state)) return stopCode(r);
  return 'other';
}

/** A billing event's code from its type and what `apply_billing_event` made of it (outcome, detail, tier). */
export function billingCode(e: {
  type: string;
  outcome: string | null;
  detail?: string | null;
  tier?: string | null;
}): ReasonCode {
  if (e.outcome === 'duplicate') return 'billing_duplicate';
  if (e.outcome === 'ignored') return /no such user/.test(e.detail ?? '') ? 'billing_unknown_user' : 'billing_older';
  if (e.type === 'tier.changed') return e.tier === 'elite' ? 'upgraded' : 'downgraded';
  if (e.type === 'payment.failed') return 'payment_failed';
  if (e.type === 'payment.recovered') return 'payment_recovered';
  return 'other';
}
