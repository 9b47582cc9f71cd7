import type { MachineState } from './machine-states';
import { causeOf, type DowntimeCause, type ReasonCode } from './reason-codes';

/**
 * The uptime ledger (docs/technical-description.md, "Timeline and uptime"), pure: an ordered list of durable
 * records in, minutes per user and UTC day out. Every minute of a user who has had a machine is in exactly one
 * bucket: running healthy, or down because of us, of Fly, of the user's own stop, or of billing. Entitled
 * minutes are all but billing's. Nothing is remembered between calls, so the ledger is the same whichever run,
 * worker or machine wrote the records.
 *
 * The rules, in short: the workflow's transitions say what happened while a workflow ran (their codes say whose
 * fault a down stretch is); once none runs (stopped, error) the applied billing events may turn the time into
 * billing's (a downgrade, a grace period ending) and back. A self-heal's record carries `downSince`, the last
 * check that found the machine healthy: the outage is counted from there (the machine may have been sick since
 * just after it), so the ledger errs by at most one renewal interval per outage, in the user's favour.
 */

export type UptimeRecord =
  | {
      at: string;
      kind: 'transition';
      to: MachineState;
      code: ReasonCode;
      /** A self-heal's first record: when the machine was last seen healthy. */
      downSince?: string | null;
    }
  | {
      at: string;
      kind: 'billing';
      type: 'tier.changed' | 'payment.failed' | 'payment.recovered';
      tier?: string | null;
      /** For payment.failed: when the grace period it opened (or left unchanged) ends. */
      graceEndsAt?: string | null;
    };

export interface UptimeDay {
  /** UTC, `YYYY-MM-DD`. */
  day: string;
  /** Healthy + ours + Fly + the user's own stop: the minutes the user was entitled to a machine. */
  entitledMinutes: number;
  healthyMinutes: number;
  down: Record<DowntimeCause, number>;
}

type Bucket = 'none' | 'healthy' | DowntimeCause;
const BUCKETS = ['healthy', 'ours', 'fly', 'user', 'billing'] as const;
const DAY_MS = 86_400_000;

interface State {
  /** What the last transition made of the time; `none` before the user's first one. */
  base: Bucket;
  /** A workflow runs (provisioning … stopping): its transitions decide, billing records only update the facts. */
  supervised: boolean;
  /** Why billing stopped the machine, while `base` is billing. */
  billingStop: ReasonCode | null;
  tierDown: boolean;
  overdue: boolean;
  graceEndsAt: number | null;
}

const ACTIVE: readonly string[] = ['provisioning', 'starting', 'running', 'stopping'];

/** Where a transition puts the time from now on, given where it was. */
function bucketOf(to: MachineState, code: ReasonCode, current: Bucket): Bucket {
  const cause = causeOf(code);
  const down = current !== 'none' && current !== 'healthy';
  // Running is healthy, except a Fly notice recorded on a running row (reconcile: "the machine vanished").
  if (to === 'running') return cause === 'fly' ? 'fly' : 'healthy';
  // A start or a self-heal: its own cause, else it continues an outage of ours or Fly's, else start-up is ours.
  if (to === 'provisioning' || to === 'starting')
    return cause === 'ours' || cause === 'fly' ? cause : current === 'ours' || current === 'fly' ? current : 'ours';
  // A stop: its own cause; a notice without one (reconcile's) keeps a down stretch as it was; else ours.
  return cause ?? (down ? current : 'ours');
}

/** Billing's say while no workflow runs: a downgrade, or a grace period that has ended. */
const billingBlocks = (s: State, t: number) =>
  s.tierDown || (s.overdue && s.graceEndsAt !== null && t >= s.graceEndsAt);

function effective(s: State, t: number): Bucket {
  if (s.supervised || s.base === 'none' || s.base === 'billing') return s.base;
  return billingBlocks(s, t) ? 'billing' : s.base;
}

function onTransition(s: State, r: Extract<UptimeRecord, { kind: 'transition' }>, current: Bucket): State {
  const ended = !ACTIVE.includes(r.to);
  // A stop without a start (a refused one) is no machine; a notice on an ended machine (reconcile's) changes nothing.
  if (s.base === 'none' && (ended || r.to === 'stopping')) return s;
  if (ended && !s.supervised && causeOf(r.code) === null) return s;
  const base = bucketOf(r.to, r.code, current);
  return {
    ...s,
    base,
    supervised: !ended,
    billingStop: base === 'billing' ? (current === 'billing' && s.billingStop ? s.billingStop : r.code) : null,
    // A start passed the entitlement check: whatever tier was recorded before, the user is entitled now.
    tierDown: r.to === 'provisioning' ? false : s.tierDown,
  };
}

function onBilling(s: State, r: Extract<UptimeRecord, { kind: 'billing' }>, t: number): State {
  const next = { ...s };
  const graceEndsAt = r.graceEndsAt ? Date.parse(r.graceEndsAt) : null;
  if (r.type === 'tier.changed' && r.tier) next.tierDown = r.tier !== 'elite';
  if (r.type === 'payment.failed') {
    next.graceEndsAt = next.overdue ? (next.graceEndsAt ?? graceEndsAt) : graceEndsAt;
    next.overdue = true;
  }
  if (r.type === 'payment.recovered') Object.assign(next, { overdue: false, graceEndsAt: null });
  if (next.supervised || next.base !== 'billing') return next;
  // Stopped by billing: when billing no longer blocks, a recovery's restart is expected (any delay is ours);
  // after a downgrade lifted, the user starts the machine (until then it is theirs).
  if (billingBlocks(next, t)) return { ...next, billingStop: next.tierDown ? 'downgraded' : 'payment_overdue' };
  return { ...next, base: next.billingStop === 'payment_overdue' ? 'ours' : 'user', billingStop: null };
}

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The longest range one ledger covers (a quarter, and a day to spare). */
export const UPTIME_MAX_DAYS = 93;

/** A range as asked for, filled in: `to` defaults to today (UTC), `from` to the first of `to`'s month. */
export function resolveUptimeRange(asked: { from?: string; to?: string }, nowMs: number): { from: string; to: string } {
  const to = asked.to ?? dayOf(nowMs);
  return { from: asked.from ?? `${to.slice(0, 7)}-01`, to };
}

/** What is wrong with a range of UTC dates (`YYYY-MM-DD`, valid), as the parameter and a sentence; null when fine. */
export function uptimeRangeProblem(r: { from: string; to: string }): { param: 'from' | 'to'; message: string } | null {
  if (r.from > r.to) return { param: 'from', message: '`from` must not be after `to`' };
  if ((Date.parse(r.to) - Date.parse(r.from)) / DAY_MS >= UPTIME_MAX_DAYS)
    return { param: 'to', message: `at most ${UPTIME_MAX_DAYS} days at once` };
  return null;
}

/** `from` … `to` (UTC dates, both included), as the instants the ledger counts between. */
export function rangeBounds(from: string, to: string): { startMs: number; endMs: number } {
  return { startMs: Date.parse(`${from}T00:00:00.000Z`), endMs: Date.parse(`${to}T00:00:00.000Z`) + DAY_MS };
}

/**
 * The ledger of one user for the UTC days `from` … `to` (both included), counted up to `now`, from their
 * records oldest first (`store/uptime.ts` reads them: from the user's last start at or before `from`).
 */
export function buildUptimeLedger(records: readonly UptimeRecord[], range: { from: string; to: string; now: number }) {
  const { startMs, endMs: rangeEnd } = rangeBounds(range.from, range.to);
  const endMs = Math.min(rangeEnd, range.now);
  const ms = new Map<string, Record<Bucket, number>>();
  for (let d = startMs; d < rangeEnd; d += DAY_MS)
    ms.set(dayOf(d), { none: 0, healthy: 0, ours: 0, fly: 0, user: 0, billing: 0 });

  const add = (b: Bucket, a: number, z: number) => {
    for (let t = Math.max(a, startMs); t < Math.min(z, endMs);) {
      const dayEnd = (Math.floor(t / DAY_MS) + 1) * DAY_MS;
      const until = Math.min(z, endMs, dayEnd);
      ms.get(dayOf(t))![b] += until - t;
      t = until;
    }
  };
  let s: State = {
    base: 'none',
    supervised: false,
    billingStop: null,
    tierDown: false,
    overdue: false,
    graceEndsAt: null,
  };
  let cursor = -Infinity;
  /** Counts [cursor, to) in the bucket of the moment, split where a grace period ends. */
  const advance = (to: number) => {
    while (cursor < to) {
      const grace = s.graceEndsAt;
      const until = !s.supervised && s.overdue && grace !== null && grace > cursor && grace < to ? grace : to;
      add(effective(s, cursor), cursor, until);
      cursor = until;
    }
  };

  for (const r of records) {
    const t = Date.parse(r.at);
    if (Number.isNaN(t) || t < cursor) continue; // out of order: never from the store, which sorts
    if (r.kind === 'billing') {
      advance(t);
      s = onBilling(s, r, t);
      continue;
    }
    // A self-heal's outage began at the last healthy check (but not before the last record).
    const since = r.downSince ? Date.parse(r.downSince) : NaN;
    const changeAt = effective(s, t) === 'healthy' && since < t ? Math.max(since, cursor) : t;
    advance(changeAt);
    s = onTransition(s, r, effective(s, changeAt));
  }
  advance(endMs);

  return [...ms].map(([day, b]): UptimeDay => {
    const [healthy, ours, fly, user, billing] = roundMinutes(BUCKETS.map((k) => b[k]));
    return {
      day,
      entitledMinutes: healthy! + ours! + fly! + user!,
      healthyMinutes: healthy!,
      down: { ours: ours!, fly: fly!, user: user!, billing: billing! },
    };
  });
}

/** Milliseconds → whole minutes that add up to the rounded total (largest remainder first). */
export function roundMinutes(values: number[]): number[] {
  const minutes = values.map((v) => v / 60_000);
  const floors = minutes.map(Math.floor);
  let left = Math.round(minutes.reduce((a, b) => a + b, 0)) - floors.reduce((a, b) => a + b, 0);
  const order = minutes.map((m, i) => [m - floors[i]!, i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) if (left-- > 0) floors[i]!++;
  return floors;
}
