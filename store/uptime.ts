import { isReasonCode, transitionCode } from '../common/reason-codes';
import type { UptimeRecord } from '../common/uptime-ledger';
import type { MachineState } from '../common/machine-states';
import type { UptimeRange } from './types';

/*
 * The uptime ledger's input (common/uptime-ledger.ts builds the ledger): the rows of `uptime_records`
 * (migration 20261202120000) — a user's transitions and applied billing events since their last start at or
 * before `from`, oldest first — as records. Both adapters call that function and map its rows here.
 */

type Row = Record<string, unknown>;

const iso = (v: unknown) => new Date(v as string | Date).toISOString();
const isoOrNull = (v: unknown) => (v == null ? null : iso(v));

/** `uptime_records`' arguments (null users: every user with a transition). */
export const uptimeArgs = (range: UptimeRange & { userIds?: string[] }) => ({
  p_user_ids: range.userIds ?? null,
  p_from: range.from.toISOString(),
  p_to: range.to.toISOString(),
});

export function toUptimeRecord(r: Row): UptimeRecord {
  if (r.source === 'billing')
    return {
      at: iso(r.at),
      kind: 'billing',
      type: r.billing_type as Extract<UptimeRecord, { kind: 'billing' }>['type'],
      tier: (r.billing_tier as string | null) ?? null,
      graceEndsAt: isoOrNull(r.grace_ends_at),
    };
  const to = r.to_status as MachineState;
  return {
    at: iso(r.at),
    kind: 'transition',
    to,
    // Rows from before reason codes carry none: derived from their words, as the workflow derives it.
    code: isReasonCode(r.reason_code) ? r.reason_code : transitionCode(to, r.reason as string | null),
    downSince: isoOrNull(r.down_since),
  };
}

/** The rows (ordered by user, then time) grouped by user, each list oldest first. */
export function groupUptimeRecords(rows: Row[]): Map<string, UptimeRecord[]> {
  const byUser = new Map<string, UptimeRecord[]>();
  for (const r of rows) {
    const userId = r.user_id as string;
    const list = byUser.get(userId) ?? [];
    if (list.length === 0) byUser.set(userId, list);
    list.push(toUptimeRecord(r));
  }
  return byUser;
}

export const UPTIME_RECORDS_SQL = 'select * from public.uptime_records($1::uuid[], $2, $3)';

/** The shape of supabase-js's `rpc(...).range()` this file needs. */
export interface RangedRpcClient {
  rpc(
    fn: string,
    args: Record<string, unknown>,
  ): {
    range(from: number, to: number): PromiseLike<{ data: unknown; error: { message: string; code?: string } | null }>;
  };
}

/** PostgREST answers at most `max-rows` (1000 by default) rows per request: read on until a short page. */
const PAGE = 1000;

/** The Supabase adapter's read, paged; the function's own order makes the pages line up. */
export async function rpcUptimeRecords(
  db: RangedRpcClient,
  range: UptimeRange & { userIds?: string[] },
): Promise<Map<string, UptimeRecord[]>> {
  const rows: Row[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const { data, error } = await db.rpc('uptime_records', uptimeArgs(range)).range(offset, offset + PAGE - 1);
    if (error)
      throw new Error(`supabase uptime_records failed: ${error.message}${error.code ? ` (${error.code})` : ''}`);
    const page = (data as Row[] | null) ?? [];
    rows.push(...page);
    if (page.length < PAGE) return groupUptimeRecords(rows);
  }
}
