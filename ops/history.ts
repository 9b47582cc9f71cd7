import { rangeBounds, resolveUptimeRange, uptimeRangeProblem } from '../common/uptime-ledger';
import { DEFAULT_UPTIME_POLICY, uptimeReport } from '../common/uptime-slo';
import type { CommandOf } from './args';
import { OpsError, type OpsDeps } from './context';
import { renderTimeline, renderUptime, type UptimeLine } from './history-render';
import { toJson } from './table';

/** `timeline` and `uptime`: read-only, from the durable records (store/timeline.ts, store/uptime.ts). */

/** `timeline <user>`: the user's timeline, newest first, as the user sees it on the page. */
export async function timeline(c: CommandOf<'timeline'>, deps: OpsDeps): Promise<void> {
  const page = await deps.store.timeline(c.userId, { limit: c.limit });
  deps.out(c.json ? toJson(page) : renderTimeline(c.userId, page.entries, page.next !== null));
}

/**
 * `uptime [--from] [--to] [--user]`: every user's ledger for the range (or one user's), a line per user and
 * month, worst availability first; users entitled to nothing in the range are left out.
 */
export async function uptime(c: CommandOf<'uptime'>, deps: OpsDeps): Promise<void> {
  const now = deps.now?.() ?? Date.now();
  const policy = deps.uptime ?? DEFAULT_UPTIME_POLICY;
  const range = resolveUptimeRange(c, now);
  const problem = uptimeRangeProblem(range);
  if (problem) throw new OpsError(`--${problem.param}: ${problem.message}`);
  const { startMs, endMs } = rangeBounds(range.from, range.to);
  const byUser = await deps.store.uptimeRecords({
    from: new Date(startMs),
    to: new Date(Math.min(endMs, now)),
    ...(c.userId ? { userIds: [c.userId] } : {}),
  });
  const reports = [...byUser].map(([userId, records]) => ({
    userId,
    report: uptimeReport(records, { ...range, now }, policy),
  }));
  const counted = reports.filter((r) => c.userId || r.report.totals.entitledMinutes > 0);
  if (c.json) return deps.out(toJson({ ...range, policy, users: counted }));
  const lines: UptimeLine[] = counted
    .flatMap(({ userId, report }) => report.months.map((month) => ({ userId, month })))
    .filter((l) => c.userId || l.month.entitledMinutes > 0)
    .sort((a, b) => (a.month.availabilityPercent ?? 100) - (b.month.availabilityPercent ?? 100));
  deps.out(renderUptime({ ...range, sloPercent: policy.sloPercent, lines }));
}
