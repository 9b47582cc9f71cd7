import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import { reasonCodes } from '../common/reason-codes';
import { rangeBounds, resolveUptimeRange, UPTIME_MAX_DAYS, uptimeRangeProblem } from '../common/uptime-ledger';
import { uptimeReport, type UptimePolicy } from '../common/uptime-slo';
import { parseTimelineCursor, TIMELINE_DEFAULT_LIMIT, TIMELINE_MAX_LIMIT } from '../store/timeline';
import type { UserHistoryStore } from '../store/types';
import type { AuthenticatedUser } from './auth';
import { HttpProblem, zodErrors } from './problem';

/**
 * `GET /v1/machines/me/timeline` and `GET /v1/machines/me/uptime` (docs/technical-description.md, "Timeline
 * and uptime"): the caller's history and uptime ledger, read under the caller's RLS (the user is the verified
 * token's, never a parameter), so another user's rows do not exist here.
 */

export const timelineQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(TIMELINE_MAX_LIMIT).default(TIMELINE_DEFAULT_LIMIT),
  before: z
    .string()
    .max(400)
    .refine((c) => parseTimelineCursor(c) !== undefined, 'must be the `next` of a previous page')
    .optional()
    .describe('an earlier page: the previous page’s `next`'),
});

const timelineEntrySchema = z.object({
  at: z.string().describe('ISO 8601'),
  kind: z.enum(['lifecycle', 'billing', 'health', 'rollout', 'operator']),
  code: z.enum(reasonCodes).describe('the reason code (docs/technical-description.md lists each with its meaning)'),
  text: z.string().describe('one sentence for a person'),
  details: z.record(z.string(), z.unknown()).describe('the particulars: state, reason, machine, event id, …'),
});
export const timelinePageSchema = z.object({
  entries: z.array(timelineEntrySchema).describe('newest first'),
  next: z.string().nullable().describe('pass as `before` for the next (older) page; null on the last one'),
});

const utcDate = z.iso.date().describe('a UTC day, YYYY-MM-DD');
export const uptimeQuerySchema = z
  .strictObject({
    from: utcDate.optional().describe('first day (default: the first of the month of `to`)'),
    to: utcDate.optional().describe(`last day, included (default: today, UTC); at most ${UPTIME_MAX_DAYS} days in all`),
  })
  .transform((asked, ctx) => {
    const range = resolveUptimeRange(asked, Date.now());
    const problem = uptimeRangeProblem(range);
    if (problem) ctx.addIssue({ code: 'custom', path: [problem.param], message: problem.message });
    return range;
  });

const minutes = z.number().int().min(0);
const downSchema = z
  .object({ ours: minutes, fly: minutes, user: minutes, billing: minutes })
  .describe('minutes down by cause: ours (unhealthy, self-heal, our bugs), Fly, stopped by the user, billing');
const totalsShape = {
  entitledMinutes: minutes.describe('healthy + ours + Fly + the user’s own stop'),
  healthyMinutes: minutes,
  down: downSchema,
  availabilityPercent: z.number().nullable().describe('healthy / (healthy + ours + Fly); null when that is 0'),
};
export const uptimeResponseSchema = z.object({
  from: z.string(),
  to: z.string(),
  days: z.array(z.object({ day: z.string(), ...totalsShape }).omit({ availabilityPercent: true })),
  totals: z.object(totalsShape),
  months: z.array(
    z.object({
      month: z.string().describe('YYYY-MM (UTC)'),
      days: z.number().int(),
      partial: z.boolean().describe('the range covers only part of the month'),
      ...totalsShape,
      sloPercent: z.number(),
      sloMet: z.boolean(),
      creditPercent: z.number().describe('share of the month’s fee owed (the credit table)'),
      creditUsd: z.number(),
    }),
  ),
  policy: z.object({
    sloPercent: z.number().describe('UPTIME_SLO_PERCENT, monthly'),
    monthlyFeeUsd: z.number().describe('UPTIME_MONTHLY_FEE_USD'),
    creditTable: z.array(z.object({ belowPercent: z.number(), creditPercent: z.number() })),
  }),
});

export function registerTimelineRoutes(
  app: FastifyInstance,
  deps: {
    userRoute: RouteShorthandOptions;
    userOf: (req: FastifyRequest) => AuthenticatedUser;
    userStore?: (user: AuthenticatedUser, req: FastifyRequest) => UserHistoryStore;
    policy: UptimePolicy;
    now?: () => number;
  },
) {
  const storeOf = (req: FastifyRequest) => {
    if (!deps.userStore)
      throw new HttpProblem(501, 'the timeline is not available on this server: it has no user store configured');
    return deps.userStore(deps.userOf(req), req);
  };

  app.get('/v1/machines/me/timeline', deps.userRoute, async (req) => {
    const q = timelineQuerySchema.safeParse(req.query ?? {});
    if (!q.success) throw new HttpProblem(400, 'not a valid timeline query', { errors: zodErrors(q.error) });
    return storeOf(req).timeline(q.data);
  });

  app.get('/v1/machines/me/uptime', deps.userRoute, async (req) => {
    const q = uptimeQuerySchema.safeParse(req.query ?? {});
    if (!q.success) throw new HttpProblem(400, 'not a valid uptime query', { errors: zodErrors(q.error) });
    const now = deps.now?.() ?? Date.now();
    const { startMs, endMs } = rangeBounds(q.data.from, q.data.to);
    const records = await storeOf(req).uptimeRecords({ from: new Date(startMs), to: new Date(Math.min(endMs, now)) });
    return uptimeReport(records, { ...q.data, now }, deps.policy);
  });
}
