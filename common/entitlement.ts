/**
 * Entitlement = profile tier + billing state + now (docs/technical-description.md §3). One pure function, used by the API
 * (provision: 403/402), by the machine workflow (at start, on every billing nudge, at every renewal)
 * and by reconcileFleet. Deterministic and dependency-free: workflow code imports it.
 *
 * How the two sources of the tier combine: `profiles.subscription_tier` is the screener app's, and
 * the trigger of migration 20261201 stamps `subscription_tier_changed_at` whenever the app changes it;
 * `tier.changed` events set `billing_accounts.tier` at the event's `occurredAt`. **The newer instant
 * wins**; on a tie, the app's profile. So an ancient downgrade never beats a profile the app changed
 * since, and an upgrade billing reports after the app's last change counts at once.
 */

/** The user's row in `billing_accounts` (instants as ISO strings; null when never set). */
export interface BillingAccount {
  tier: string | null;
  tierChangedAt: string | null;
  paymentState: 'ok' | 'overdue';
  overdueSince: string | null;
  graceEndsAt: string | null;
  lastPaymentEventAt: string | null;
}

/** What `billing_facts(user)` returns: the app's tier and the billing account. */
export interface BillingFacts {
  /** Null when the user has no profile. */
  profileTier: string | null;
  profileTierChangedAt: string | null;
  /** Null when no billing event has ever been applied for the user. */
  account: BillingAccount | null;
}

export const ENTITLED_TIER = 'elite';

export interface Entitlement {
  entitled: boolean;
  /** `not_elite`: the effective tier is not elite; `payment_overdue`: the grace period has ended. */
  denied?: 'not_elite' | 'payment_overdue';
  tier: string | null;
  tierSource: 'profile' | 'billing' | 'none';
  paymentState: 'ok' | 'overdue';
  overdueSince: string | null;
  /** Set while a payment is overdue: when the machine stops (or stopped). */
  graceEndsAt: string | null;
  /** One sentence a person can read: why (not) entitled. */
  detail: string;
}

/** Milliseconds since the epoch of an ISO instant, whatever its offset or precision; NaN when it is none. */
export const instant = (iso: string | null | undefined): number => (iso ? Date.parse(iso) : NaN);

const isoOf = (iso: string | null) => (iso && !Number.isNaN(instant(iso)) ? new Date(instant(iso)).toISOString() : iso);

/** The tier that counts: the newer of the app's profile and the last applied `tier.changed` event. */
export function effectiveTier(f: BillingFacts): { tier: string | null; source: Entitlement['tierSource'] } {
  const billingAt = instant(f.account?.tierChangedAt);
  const profileAt = instant(f.profileTierChangedAt);
  if (f.account?.tier && !Number.isNaN(billingAt) && (f.profileTier === null || !(profileAt >= billingAt)))
    return { tier: f.account.tier, source: 'billing' };
  if (f.profileTier !== null) return { tier: f.profileTier, source: 'profile' };
  return { tier: null, source: 'none' };
}

export function entitlement(f: BillingFacts, nowMs: number): Entitlement {
  const { tier, source } = effectiveTier(f);
  const overdue = f.account?.paymentState === 'overdue';
  const graceEndsAt = overdue ? isoOf(f.account?.graceEndsAt ?? null) : null;
  const overdueSince = overdue ? isoOf(f.account?.overdueSince ?? null) : null;
  const base = {
    tier,
    tierSource: source,
    paymentState: overdue ? ('overdue' as const) : ('ok' as const),
    overdueSince,
    graceEndsAt,
  };
  if (tier !== ENTITLED_TIER)
    return {
      ...base,
      entitled: false,
      denied: 'not_elite',
      detail: `a cloud machine needs the elite tier; your tier is ${tier ?? 'none'}`,
    };
  if (overdue && !(nowMs < instant(graceEndsAt)))
    return {
      ...base,
      entitled: false,
      denied: 'payment_overdue',
      detail: `payment overdue since ${overdueSince ?? 'unknown'}, grace ended ${graceEndsAt ?? 'unknown'}`,
    };
  return {
    ...base,
    entitled: true,
    detail: overdue ? `payment overdue since ${overdueSince}; grace until ${graceEndsAt}` : 'elite, paid up',
  };
}
