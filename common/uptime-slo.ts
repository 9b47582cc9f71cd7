import type { DowntimeCause } from './reason-codes';
import { buildUptimeLedger, type UptimeDay, type UptimeRecord } from './uptime-ledger';

/**
 * The uptime SLO and the credit owed when a month misses it (docs/technical-description.md, "Timeline and
 * uptime"), pure. Availability counts only downtime that is ours or Fly's: a user's own stop and billing's
 * stops are neither in the numerator nor the denominator.
 *
 *   availability = healthy / (healthy + ours + Fly)          per calendar month (UTC)
 *
 * | monthly availability                | credit (of the month's fee) |
 * | ----------------------------------- | --------------------------- |
 * | at or above the SLO (99.5 %)        | none                        |
 * | below the SLO                       | 10 %                        |
 * | below 99 % (or the SLO, if lower)   | 25 %                        |
 * | below 95 % (or the SLO, if lower)   | 50 %                        |
 */

export interface UptimePolicy {
  /** UPTIME_SLO_PERCENT, monthly. */
  sloPercent: number;
  /** UPTIME_MONTHLY_FEE_USD: the elite tier's price, what a credit is a share of. */
  monthlyFeeUsd: number;
}
export const DEFAULT_UPTIME_POLICY: UptimePolicy = { sloPercent: 99.5, monthlyFeeUsd: 29 };

/** The credit table: below each bound (the first is the SLO itself), that share of the month's fee. */
export function creditTiers(sloPercent: number): { belowPercent: number; creditPercent: number }[] {
  return [
    { belowPercent: Math.min(sloPercent, 95), creditPercent: 50 },
    { belowPercent: Math.min(sloPercent, 99), creditPercent: 25 },
    { belowPercent: sloPercent, creditPercent: 10 },
  ];
}

/** The share of the fee owed for a month at `availability` (null: nothing was expected to run, nothing owed). */
export function creditPercent(availabilityPercent: number | null, sloPercent: number): number {
  if (availabilityPercent === null) return 0;
  return creditTiers(sloPercent).find((t) => availabilityPercent < t.belowPercent)?.creditPercent ?? 0;
}

export interface UptimeTotals {
  entitledMinutes: number;
  healthyMinutes: number;
  down: Record<DowntimeCause, number>;
  /** healthy / (healthy + ours + Fly), in percent to 3 decimals; null when that is 0 minutes. */
  availabilityPercent: number | null;
}

export function totalsOf(days: readonly UptimeDay[]): UptimeTotals {
  const sum = (f: (d: UptimeDay) => number) => days.reduce((a, d) => a + f(d), 0);
  const down = {
    ours: sum((d) => d.down.ours),
    fly: sum((d) => d.down.fly),
    user: sum((d) => d.down.user),
    billing: sum((d) => d.down.billing),
  };
  const healthyMinutes = sum((d) => d.healthyMinutes);
  const counted = healthyMinutes + down.ours + down.fly;
  return {
    entitledMinutes: sum((d) => d.entitledMinutes),
    healthyMinutes,
    down,
    availabilityPercent: counted === 0 ? null : Math.floor((healthyMinutes / counted) * 100_000) / 1000,
  };
}

export interface MonthUptime extends UptimeTotals {
  /** UTC, `YYYY-MM`. */
  month: string;
  /** Days of the month inside the range asked for (a month cut by the range counts only those). */
  days: number;
  partial: boolean;
  sloPercent: number;
  sloMet: boolean;
  creditPercent: number;
  creditUsd: number;
}

const daysInMonth = (month: string) => {
  const [y, m] = month.split('-').map(Number);
  return new Date(Date.UTC(y!, m!, 0)).getUTCDate();
};

/** The ledger's days by calendar month, each against the SLO with its credit. */
export function monthlyUptime(days: readonly UptimeDay[], policy: UptimePolicy): MonthUptime[] {
  const months = new Map<string, UptimeDay[]>();
  for (const d of days) months.set(d.day.slice(0, 7), [...(months.get(d.day.slice(0, 7)) ?? []), d]);
  return [...months].map(([month, list]) => {
    const totals = totalsOf(list);
    const credit = creditPercent(totals.availabilityPercent, policy.sloPercent);
    return {
      month,
      days: list.length,
      partial: list.length < daysInMonth(month),
      ...totals,
      sloPercent: policy.sloPercent,
      sloMet: credit === 0,
      creditPercent: credit,
      creditUsd: Math.round(policy.monthlyFeeUsd * credit) / 100,
    };
  });
}

export interface UptimeReport {
  from: string;
  to: string;
  days: UptimeDay[];
  totals: UptimeTotals;
  months: MonthUptime[];
  policy: UptimePolicy & { creditTable: ReturnType<typeof creditTiers> };
}

/** One user's ledger for `from` … `to` (UTC days, both included) with totals, months against the SLO, the policy. */
export function uptimeReport(
  records: readonly UptimeRecord[],
  range: { from: string; to: string; now: number },
  policy: UptimePolicy,
): UptimeReport {
  const days = buildUptimeLedger(records, range);
  return {
    from: range.from,
    to: range.to,
    days,
    totals: totalsOf(days),
    months: monthlyUptime(days, policy),
    policy: { ...policy, creditTable: creditTiers(policy.sloPercent) },
  };
}
