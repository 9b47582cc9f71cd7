import { createHmac, timingSafeEqual } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { subscriptionTiers, type ServiceStore } from '../store/types';
import {
  machineWorkflowId,
  paymentFailedSignal,
  paymentRecoveredSignal,
  tierChangedSignal,
} from '../workflows/contract';
import { HttpProblem, zodErrors } from './problem';

export const SIGNATURE_HEADER = 'x-signature';
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

const base = {
  id: z.string().min(1).max(200).describe('unique per event: a replayed id is applied once'),
  userId: z.uuid(),
  occurredAt: z.iso.datetime({ offset: true }),
};
export const billingEventSchema = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('tier.changed'), tier: z.enum(subscriptionTiers) }),
  z.object({ ...base, type: z.literal('payment.failed') }),
  z.object({ ...base, type: z.literal('payment.recovered') }),
]);
export type BillingEvent = z.infer<typeof billingEventSchema>;

export const webhookResultSchema = z.object({
  status: z
    .enum(['applied', 'ignored', 'duplicate'])
    .describe(
      '"applied": the billing account took it; "ignored": older than what the account reflects (or an unknown user); "duplicate": this id was received before',
    ),
  detail: z.string().describe('what the event did, or why it did nothing'),
  delivered: z.boolean().describe('whether a running machine workflow was nudged to re-read the billing state'),
  restarted: z.boolean().optional().describe('true when a machine stopped for payment_overdue was started again'),
});
export type WebhookResult = z.infer<typeof webhookResultSchema>;

/** The signature a sender puts in `x-signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signWebhook(secret: string, body: string | Buffer, t = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

/**
 * Checks `x-signature` over the raw body, in constant time, within the tolerance (both ways: a clock
 * far in the future is as suspect as a stale one). Several `v1=` values are accepted (secret rotation).
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  rawBody: Buffer,
  nowSeconds = Math.floor(Date.now() / 1000),
): void {
  if (!header) throw new HttpProblem(401, `missing ${SIGNATURE_HEADER} header`);
  let t: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v && /^\d{1,12}$/.test(v)) t = Number(v);
    if (k === 'v1' && v && /^[0-9a-f]{64}$/i.test(v)) signatures.push(Buffer.from(v, 'hex'));
  }
  if (t === undefined || signatures.length === 0)
    throw new HttpProblem(401, `malformed ${SIGNATURE_HEADER} header: expected t=<unix>,v1=<hex>`);
  if (Math.abs(nowSeconds - t) > SIGNATURE_TOLERANCE_SECONDS)
    throw new HttpProblem(401, 'signature timestamp outside the 5-minute tolerance');
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  if (!signatures.some((s) => s.length === expected.length && timingSafeEqual(s, expected)))
    throw new HttpProblem(401, 'signature mismatch');
}

export function parseBillingEvent(rawBody: Buffer): BillingEvent {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new HttpProblem(400, 'body is not valid JSON');
  }
  const parsed = billingEventSchema.safeParse(json);
  if (!parsed.success) throw new HttpProblem(400, 'not a valid billing event', { errors: zodErrors(parsed.error) });
  return parsed.data;
}

export interface ApplyDeps {
  temporal: Client;
  store: ServiceStore;
  /** The grace period a `payment.failed` opens (MACHINE_PAYMENT_GRACE_PERIOD, else the workflow's default). */
  gracePeriodMs: number;
  /** Starts again a machine stopped for payment_overdue (unless its user stopped it); true when it did. */
  resumeAfterRecovery(userId: string): Promise<boolean>;
}

/**
 * Applies a verified event. Order: **record and apply, then nudge.** The event is recorded and applied
 * to the user's billing account in one transaction (once per id; an older event changes nothing), then
 * the running workflow, if any, is signalled to re-read that state. The nudge is sent on every delivery,
 * a duplicate's too (the first delivery may have died between commit and signal; the sender retries), and
 * carries the event, which the workflow applies once more by id: a no-op. With no running workflow the
 * event is kept in the account and counts when the user next provisions; a `payment.recovered` then
 * starts a machine that billing stopped. `tier.changed` never provisions a machine by itself.
 */
export async function applyBillingEvent(deps: ApplyDeps, event: BillingEvent): Promise<WebhookResult> {
  const { outcome, detail } = await deps.store.applyBillingEvent({
    id: event.id,
    type: event.type,
    userId: event.userId,
    occurredAt: event.occurredAt,
    tier: event.type === 'tier.changed' ? event.tier : undefined,
    payload: event,
    gracePeriodMs: deps.gracePeriodMs,
  });
  if (outcome === 'ignored') return { status: outcome, detail, delivered: false };
  const handle = deps.temporal.workflow.getHandle(machineWorkflowId(event.userId));
  const nudge = { eventId: event.id, occurredAt: event.occurredAt };
  let delivered = true;
  try {
    if (event.type === 'tier.changed') await handle.signal(tierChangedSignal, { ...nudge, tier: event.tier });
    else await handle.signal(event.type === 'payment.failed' ? paymentFailedSignal : paymentRecoveredSignal, nudge);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // Temporal unreachable: 5xx, the sender retries
    delivered = false;
  }
  const restarted = !delivered && event.type === 'payment.recovered' && (await deps.resumeAfterRecovery(event.userId));
  return { status: outcome, detail, delivered, ...(restarted ? { restarted } : {}) };
}
