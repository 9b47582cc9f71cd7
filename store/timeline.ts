import {
  billingCode,
  isReasonCode,
  kindOf,
  meaningOf,
  transitionCode,
  type ReasonCode,
  type TimelineKind,
} from '../common/reason-codes';
import type { MachineTimelineEntry, TimelinePage, TimelineQuery } from './types';

/*
 * A user's timeline (GET /v1/machines/me/timeline, `ops timeline`): the rows of the `machine_timeline` view
 * (migration 20261202120000: transitions and billing events in one shape, RLS as the caller) as entries with a
 * reason code and a sentence, paged newest first. Both adapters call `machine_timeline_page` and map its rows
 * here, so the cursor and the words cannot differ between them.
 */

export type Row = Record<string, unknown>;

export const TIMELINE_MAX_LIMIT = 200;
export const TIMELINE_DEFAULT_LIMIT = 50;

interface Cursor {
  at: string;
  source: string;
  seq: string;
}

/** A page cursor: the last entry's (at, source, seq) as base64url JSON; opaque to callers. */
const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.at, c.source, c.seq])).toString('base64url');

/** The cursor in a `before`, or undefined when it is not one this store made. */
export function parseTimelineCursor(before: string): Cursor | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(before, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'string')) return undefined;
    const [at, source, seq] = v as string[];
    if (Number.isNaN(Date.parse(at!)) || !['machine', 'billing'].includes(source!) || seq!.length > 200)
      return undefined;
    return { at: at!, source: source!, seq: seq! };
  } catch {
    return undefined;
  }
}

/** `machine_timeline_page`'s arguments: one row more than asked for, to know whether another page follows. */
export function timelinePageArgs(userId: string, q: TimelineQuery = {}) {
  const limit = Math.min(Math.max(q.limit ?? TIMELINE_DEFAULT_LIMIT, 1), TIMELINE_MAX_LIMIT);
  const cursor = q.before ? parseTimelineCursor(q.before) : undefined;
  if (q.before && !cursor) throw new Error('not a timeline cursor');
  return {
    limit,
    args: {
      p_user_id: userId,
      p_limit: limit + 1,
      p_before_at: cursor?.at ?? null,
      p_before_source: cursor?.source ?? null,
      p_before_seq: cursor?.seq ?? null,
    },
  };
}

const iso = (v: unknown) => new Date(v as string | Date).toISOString();
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

const STATE_WORDS: Record<string, string> = {
  provisioning: 'Provisioning',
  starting: 'Starting',
  running: 'Running',
  stopping: 'Stopping',
  stopped: 'Stopped',
  error: 'Failed',
};
const sentence = (head: string, c: ReasonCode, particulars: string | null) =>
  `${head}: ${meaningOf(c)}${particulars ? ` (${particulars})` : ''}.`;

function transitionEntry(r: Row): MachineTimelineEntry {
  const to = String(r.to_status);
  const reason = str(r.reason);
  const code = isReasonCode(r.reason_code) ? r.reason_code : transitionCode(to, reason);
  // A stop billing called for is the machine's own history; the billing event itself is its own entry.
  const kind: TimelineKind = kindOf(code) === 'billing' ? 'lifecycle' : kindOf(code);
  return {
    at: iso(r.at),
    kind,
    code,
    // The reason's own words only where they add something to the code's meaning.
    text: sentence(STATE_WORDS[to] ?? to, code, reason && reason !== code && reason !== 'requested' ? reason : null),
    details: {
      ...((r.details as Record<string, unknown> | null) ?? {}),
      state: to,
      from: str(r.from_status),
      reason,
      workflowId: str(r.workflow_id),
      machineId: str(r.fly_machine_id),
    },
  };
}

const BILLING_WORDS: Record<string, string> = {
  'tier.changed': 'Tier change',
  'payment.failed': 'Payment failure',
  'payment.recovered': 'Payment recovery',
};

function billingEntry(r: Row): MachineTimelineEntry {
  const type = String(r.billing_type);
  const outcome = str(r.billing_outcome);
  const detail = str(r.billing_detail);
  const code = billingCode({ type, outcome, detail, tier: str(r.billing_tier) });
  return {
    at: iso(r.at),
    kind: 'billing',
    code,
    text: sentence(`${BILLING_WORDS[type] ?? type} ${outcome ?? 'received'}`, code, detail),
    details: {
      eventId: String(r.seq),
      type,
      outcome,
      detail,
      tier: str(r.billing_tier),
      receivedAt: iso(r.received_at),
    },
  };
}

/** Rows of `machine_timeline_page` (asked for `limit + 1`) → a page of entries and the next page's cursor. */
export function toTimelinePage(rows: Row[], limit: number): TimelinePage {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    entries: page.map((r) => (r.source === 'billing' ? billingEntry(r) : transitionEntry(r))),
    next:
      rows.length > limit && last
        ? encodeCursor({ at: rawInstant(last.at), source: String(last.source), seq: String(last.seq) })
        : null,
  };
}

/**
 * The instant as Postgres wrote it, to the microsecond (PostgREST's JSON; the pg adapter asks for ISO text): a
 * cursor rounded to the millisecond would skip rows that differ from the page's last one below it.
 */
const rawInstant = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));

/** The Postgres adapter's read (as the user under RLS, or as the service). */
export async function queryTimeline(
  query: (sql: string, params: unknown[]) => Promise<Row[]>,
  userId: string,
  q?: TimelineQuery,
): Promise<TimelinePage> {
  const { limit, args } = timelinePageArgs(userId, q);
  const rows = await query(
    // The instant as ISO text to the microsecond, for the cursor (a Date would round it to the millisecond).
    `select *, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_exact
       from public.machine_timeline_page($1, $2, $3, $4, $5)`,
    Object.values(args),
  );
  return toTimelinePage(
    rows.map((r) => ({ ...r, at: r.at_exact })),
    limit,
  );
}

/** The shape of supabase-js's `rpc` this file needs (kept narrow: no import of the client here). */
export interface RpcClient {
  rpc(
    fn: string,
    args: Record<string, unknown>,
  ): PromiseLike<{ data: unknown; error: { message: string; code?: string } | null }>;
}

/** The Supabase adapter's read: with the service key (any user) or a user's own token (RLS: only theirs). */
export async function rpcTimeline(db: RpcClient, userId: string, q?: TimelineQuery): Promise<TimelinePage> {
  const { limit, args } = timelinePageArgs(userId, q);
  const { data, error } = await db.rpc('machine_timeline_page', args);
  if (error)
    throw new Error(`supabase machine_timeline_page failed: ${error.message}${error.code ? ` (${error.code})` : ''}`);
  return toTimelinePage((data as Row[] | null) ?? [], limit);
}
