import { z } from 'zod';
import { machineStates } from '../common/machine-states';

/*
 * What the CLI reads from other processes, validated where it comes in: the machine workflow's
 * status query, reconcileFleet's report, and fly-local's admin API. Loose objects: a newer producer
 * may add fields; the ones printed must be there.
 */

const timelineEntry = z.looseObject({ at: z.string(), state: z.enum(machineStates), reason: z.string().optional() });

export const machineStatusSchema = z.looseObject({
  state: z.enum(machineStates),
  userId: z.string(),
  machineId: z.string().nullable(),
  region: z.string(),
  since: z.string(),
  lastHealthyAt: z.string().nullable(),
  lastRenewedAt: z.string().nullable(),
  reason: z.string().nullable(),
  tier: z.string().nullable(),
  paymentState: z.enum(['ok', 'overdue']),
  paymentOverdueSince: z.string().nullable(),
  paymentGraceEndsAt: z.string().nullable(),
  recent: z.array(timelineEntry),
});
export type CheckedStatus = z.infer<typeof machineStatusSchema>;

const userAction = { userId: z.string() };
export const reconcileReportSchema = z.looseObject({
  machinesSeen: z.number(),
  workflowsSeen: z.number(),
  rowsSeen: z.number(),
  destroyed: z.array(
    z.looseObject({
      ...userAction,
      machineId: z.string(),
      kind: z.string(),
      keep: z.string().optional(),
      outcome: z.string(),
    }),
  ),
  repaired: z.array(z.looseObject({ ...userAction, from: z.string(), to: z.string() })),
  signalled: z.array(z.looseObject({ ...userAction, workflowId: z.string(), machineId: z.string() })),
  nudged: z.array(z.looseObject({ ...userAction, workflowId: z.string(), detail: z.string() })),
  skipped: z.array(z.looseObject({ action: z.string(), target: z.string(), outcome: z.string() })),
});
export type CheckedReport = z.infer<typeof reconcileReportSchema>;

/** `GET /admin/machines` of fly-local (dev/fly-local/admin-routes.ts): where each machine's log file is. */
export const flyLocalMachinesSchema = z.array(
  z.looseObject({ id: z.string(), state: z.string(), logFile: z.string(), alive: z.boolean().optional() }),
);

/** Parses `value` with `schema`; a mismatch names its source and the first bad field. */
export function checked<T>(schema: z.ZodType<T>, value: unknown, source: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new Error(`${source} answered something unexpected: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
}
