import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Stripe from 'stripe';
import type { ApiConfig } from './config';
import type { ApiMetrics } from './metrics';
import { HttpProblem, zodErrors } from './problem';
import {
  mapStripeEvent,
  parsePriceTiers,
  stripeEventSchema,
  type StripeMapping,
  type StripeEvent,
} from './stripe-events';
import { applyBillingEvent, type ApplyDeps, type BillingEvent, type WebhookResult } from './webhooks';

export const STRIPE_SIGNATURE_HEADER = 'stripe-signature';
/** Stripe's events carry whole objects (an invoice its lines): more room than our own events need. */
export const STRIPE_BODY_LIMIT_BYTES = 512 * 1024;
/** The metrics' `type` before the event is verified and parsed. */
const UNVERIFIED = 'stripe';

export interface StripeWebhookDeps extends ApplyDeps {
  config: ApiConfig;
  metrics: ApiMetrics;
}

/**
 * `POST /v1/webhooks/stripe`, registered in the raw-body scope of api/webhook-routes.ts (the signature
 * is over the exact bytes). Verified with the `stripe` package against any of STRIPE_WEBHOOK_SECRET's
 * secrets; every failure is a 400 (what Stripe's own examples answer) and records nothing. A verified
 * event is always answered 200, even when it changes nothing (so Stripe stops retrying it), with
 * `{ status, detail, delivered }` saying what it did.
 */
export function registerStripeWebhook(scope: FastifyInstance, deps: StripeWebhookDeps) {
  const { config, metrics } = deps;
  const parsedTiers = parsePriceTiers(config.STRIPE_PRICE_TIERS ?? '');
  const tiers = 'tiers' in parsedTiers ? parsedTiers.tiers : new Map();
  scope.post(
    '/v1/webhooks/stripe',
    { bodyLimit: STRIPE_BODY_LIMIT_BYTES },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const secrets = config.STRIPE_WEBHOOK_SECRET;
      if (!secrets?.length) {
        metrics.webhooks.inc({ type: UNVERIFIED, result: 'not_configured' });
        throw new HttpProblem(503, 'Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET)');
      }
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const header = req.headers[STRIPE_SIGNATURE_HEADER];
      let verified: unknown;
      try {
        verified = verifyStripeEvent(raw, typeof header === 'string' ? header : undefined, secrets, {
          toleranceSeconds: config.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        });
      } catch (err) {
        metrics.webhooks.inc({ type: UNVERIFIED, result: 'bad_signature' });
        throw err;
      }
      const envelope = stripeEventSchema.safeParse(verified);
      if (!envelope.success) {
        metrics.webhooks.inc({ type: UNVERIFIED, result: 'malformed' });
        throw new HttpProblem(400, 'not a Stripe event', { errors: zodErrors(envelope.error) });
      }
      const event = envelope.data;
      const result = await handleStripeEvent(deps, event, mapStripeEvent(event, tiers));
      metrics.webhooks.inc({ type: event.type, result: result.status });
      req.log.info({ stripeEventId: event.id, type: event.type, ...result }, 'stripe event');
      return reply.code(200).send(result);
    },
  );
}

/**
 * The event, verified with any one of the secrets (one secret mismatching is expected while Stripe
 * rolls them). Stripe's errors become short problem details; the library's own carry advice and links.
 */
export function verifyStripeEvent(
  rawBody: Buffer,
  header: string | undefined,
  secrets: readonly string[],
  opts: { toleranceSeconds: number; nowMs?: number },
): unknown {
  if (!header) throw new HttpProblem(400, `missing ${STRIPE_SIGNATURE_HEADER} header`);
  if (rawBody.length === 0) throw new HttpProblem(400, 'empty body');
  for (const secret of secrets) {
    try {
      return Stripe.webhooks.constructEvent(rawBody, header, secret, opts.toleranceSeconds, undefined, opts.nowMs);
    } catch (err) {
      if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) {
        // Verified, but not an event we can read: the JSON, or a thin event (a destination misconfigured).
        if (err instanceof SyntaxError) throw new HttpProblem(400, 'body is not valid JSON');
        throw new HttpProblem(400, `not a Stripe snapshot event: ${(err as Error).message}`);
      }
      const message = err.message;
      if (/^No signatures found matching/.test(message)) continue; // maybe the next secret
      if (/tolerance/i.test(message))
        throw new HttpProblem(
          400,
          `${STRIPE_SIGNATURE_HEADER} timestamp is older than the ${opts.toleranceSeconds}-second tolerance`,
        );
      if (/expected scheme/.test(message))
        throw new HttpProblem(400, `${STRIPE_SIGNATURE_HEADER} header carries no v1 signature`);
      throw new HttpProblem(400, `malformed ${STRIPE_SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<hex>`);
    }
  }
  throw new HttpProblem(400, `${STRIPE_SIGNATURE_HEADER} matches none of the endpoint secrets`);
}

/**
 * Finds the user, then applies or records. The event names the user (metadata) → the customer is
 * linked to them (never re-linked: a customer linked to someone else is refused); it names none →
 * the customer's link says who. No user either way: recorded as ignored, answered 200.
 */
export async function handleStripeEvent(
  deps: ApplyDeps,
  event: StripeEvent,
  mapping: StripeMapping,
): Promise<WebhookResult> {
  const record = (detail: string, userId: string | null = mapping.userId) =>
    recordIgnored(deps, event, mapping, detail, userId);
  if (mapping.action === 'ignore') {
    if (!mapping.record) return { status: 'ignored', detail: mapping.detail, delivered: false };
    return record(mapping.detail);
  }
  let userId = mapping.userId;
  if (userId && mapping.customerId) {
    const link = await deps.store.linkStripeCustomer({
      customerId: mapping.customerId,
      userId,
      eventId: mapping.id,
    });
    if (link.outcome === 'conflict') return record(link.detail, link.userId);
  } else if (!userId && mapping.customerId) {
    userId = await deps.store.findStripeCustomerUser(mapping.customerId);
    if (!userId)
      return record(
        `customer ${mapping.customerId} is not linked to a user: neither this event nor an earlier one carried metadata.user_id`,
      );
  }
  if (!userId) return record('the event names no customer and no metadata.user_id');
  // The billing event as our own webhook would send it; `stripe` rides along into the recorded payload.
  const billing: BillingEvent & { stripe: StripeMapping['source'] } =
    mapping.type === 'tier.changed'
      ? {
          id: mapping.id,
          type: 'tier.changed',
          tier: mapping.tier!,
          userId,
          occurredAt: mapping.occurredAt,
          stripe: mapping.source,
        }
      : { id: mapping.id, type: mapping.type, userId, occurredAt: mapping.occurredAt, stripe: mapping.source };
  return applyBillingEvent(deps, billing);
}

async function recordIgnored(
  deps: ApplyDeps,
  event: StripeEvent,
  mapping: StripeMapping,
  detail: string,
  userId: string | null,
): Promise<WebhookResult> {
  const { outcome, detail: said } = await deps.store.recordIgnoredBillingEvent({
    id: mapping.id,
    type: event.type,
    userId,
    occurredAt: mapping.occurredAt,
    payload: { stripe: mapping.source, reason: detail },
    detail,
  });
  return { status: outcome, detail: said, delivered: false };
}
