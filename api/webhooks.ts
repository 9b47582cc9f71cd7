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
  status: z.enum(['delivered', 'recorded', 'duplicate']),
  delivered: z.boolean().optional().describe('whether a running machine workflow received it'),
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

/**
 * Applies a verified event. Order: **signal first, then record**. The workflow applies each event id
 * once, so a signal repeated after a crash (the sender retries: nothing was recorded) is harmless,
 * while recording first could lose the signal for good (recorded, so every retry is a "duplicate").
 * A replay of a recorded id therefore reaches the workflow again and is dropped there by its id; the
 * answer is `duplicate`. An event for a user with no running workflow is recorded (audit) and does
 * nothing else: in particular `tier.changed` to elite never provisions a machine by itself.
 */
export async function applyBillingEvent(
  deps: { temporal: Client; store: ServiceStore },
  event: BillingEvent,
): Promise<WebhookResult> {
  const handle = deps.temporal.workflow.getHandle(machineWorkflowId(event.userId));
  let delivered = true;
  try {
    if (event.type === 'tier.changed')
      await handle.signal(tierChangedSignal, { eventId: event.id, tier: event.tier, occurredAt: event.occurredAt });
    else
      await handle.signal(event.type === 'payment.failed' ? paymentFailedSignal : paymentRecoveredSignal, {
        eventId: event.id,
        occurredAt: event.occurredAt,
      });
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // Temporal unreachable: 5xx, the sender retries
    delivered = false;
  }
  const first = await deps.store.recordWebhookEvent({
    id: event.id,
    type: event.type,
    userId: event.userId,
    payload: event,
  });
  if (!first) return { status: 'duplicate' };
  return delivered ? { status: 'delivered', delivered: true } : { status: 'recorded', delivered: false };
}
