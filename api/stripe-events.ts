import { z } from 'zod';
import type { BillingEventType } from '../store/types';

/**
 * Stripe's events as our billing events (`tier.changed`, `payment.failed`, `payment.recovered`): pure,
 * no I/O. The route (api/stripe-webhook.ts) verifies the signature, finds the user of a customer the
 * event does not name, and applies the result through the same path as our own billing webhook.
 *
 * Subscription status → tier (Stripe: docs.stripe.com/billing/subscriptions/overview#subscription-statuses):
 * - `active`, `trialing`: the tier of the subscription's price (a trial is the tier, on trial).
 * - `past_due`: still the tier. The `invoice.payment_failed` that made it past due opened the grace
 *   period, and the grace period decides when the machine stops; downgrading here would skip it.
 * - `canceled`, `unpaid`, `incomplete_expired`, `paused`: `free` (no paid service; a paused
 *   subscription bills nothing). `customer.subscription.deleted` is `free` whatever its status.
 * - `incomplete`: ignored: the first payment is pending (Stripe gives it 23 hours); the tier changes
 *   with the `customer.subscription.updated` that makes it active, or it expires (`free`).
 * Only prices listed in STRIPE_PRICE_TIERS count: a subscription with none of them is not one of our
 * tiers (its deletion downgrades nobody), and with several, the highest tier wins.
 */

/** The tiers a Stripe price may grant (`anonymous` is no one's subscription). */
export const priceTierValues = ['free', 'pro', 'elite'] as const;
export type PriceTier = (typeof priceTierValues)[number];
export type PriceTiers = ReadonlyMap<string, PriceTier>;

const PRICE_ID = /^[\w.-]{1,255}$/;

/**
 * STRIPE_PRICE_TIERS: `price_123:elite,price_456:pro` (`price_123=elite` works too). An error is one
 * sentence naming the entry it could not use.
 */
export function parsePriceTiers(text: string): { tiers: Map<string, PriceTier> } | { error: string } {
  const tiers = new Map<string, PriceTier>();
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue; // a trailing comma is not worth refusing to start over
    const m = /^([^:=\s]+)\s*[:=]\s*(\S+)$/.exec(entry);
    const price = m?.[1];
    const tier = m?.[2];
    if (!price || !tier || !PRICE_ID.test(price))
      return { error: `has an entry "${entry}" that is not price:tier (e.g. price_123:elite,price_456:pro)` };
    if (!(priceTierValues as readonly string[]).includes(tier))
      return { error: `has an entry "${entry}" whose tier is not one of ${priceTierValues.join(', ')}` };
    if (tiers.has(price) && tiers.get(price) !== tier) return { error: `lists price "${price}" twice` };
    tiers.set(price, tier as PriceTier);
  }
  if (tiers.size === 0) return { error: 'lists no price:tier entry (e.g. price_123:elite,price_456:pro)' };
  return { tiers };
}

/** The envelope of every Stripe snapshot event (docs.stripe.com/api/events/object). */
export const stripeEventSchema = z.object({
  id: z.string().min(1).max(190).describe('evt_…: recorded as billing event `stripe:<id>`, applied once'),
  object: z.literal('event'),
  type: z.string().min(1).max(200),
  created: z.number().int().nonnegative().describe('seconds since the epoch: the event’s instant, which orders it'),
  livemode: z.boolean().optional(),
  api_version: z.string().nullish(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEvent = z.infer<typeof stripeEventSchema>;

// Only the fields we read; everything else in Stripe's objects passes unread.
const metadata = z.record(z.string(), z.unknown()).nullish();
const expandable = z.union([z.string().min(1), z.object({ id: z.string().min(1), metadata })]);
const subscriptionSchema = z.object({
  id: z.string().min(1),
  object: z.literal('subscription'),
  customer: expandable,
  status: z.string().min(1),
  metadata,
  items: z.object({ data: z.array(z.object({ price: z.object({ id: z.string().min(1) }) })) }),
});
const invoiceSchema = z.object({
  id: z.string().min(1).nullish(),
  object: z.literal('invoice'),
  customer: expandable.nullish(),
  // Since API version 2025-03-31.basil:
  parent: z
    .object({ subscription_details: z.object({ metadata, subscription: expandable.nullish() }).nullish() })
    .nullish(),
  // Before it:
  subscription: expandable.nullish(),
  subscription_details: z.object({ metadata }).nullish(),
});

const SUBSCRIPTION_TYPES = ['customer.subscription.created', 'customer.subscription.updated'];
const INVOICE_TYPES: Record<string, BillingEventType> = {
  'invoice.payment_failed': 'payment.failed',
  'invoice.paid': 'payment.recovered',
};
const FREE_STATUSES = ['canceled', 'unpaid', 'incomplete_expired', 'paused'];
const PRICED_STATUSES = ['active', 'trialing', 'past_due'];
const TIER_RANK: Record<PriceTier, number> = { free: 0, pro: 1, elite: 2 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the payload of the recorded event says about where it came from. */
export interface StripeSource {
  event: string;
  type: string;
  object: string | null;
  customer: string | null;
}

interface Common {
  /** `stripe:<evt id>`: the billing event id. */
  id: string;
  /** `created`, as an ISO instant. */
  occurredAt: string;
  /** From the event's metadata (a UUID); null when the event names no user. */
  userId: string | null;
  customerId: string | null;
  source: StripeSource;
}
export type StripeApply = Common & { action: 'apply'; type: BillingEventType; tier?: PriceTier };
/** `record`: false for types we do not use (nothing to dedupe, nothing to explain later). */
export type StripeIgnore = Common & { action: 'ignore'; detail: string; record: boolean };
export type StripeMapping = StripeApply | StripeIgnore;

export function mapStripeEvent(event: StripeEvent, tiers: PriceTiers): StripeMapping {
  const obj = event.data.object;
  const base = {
    id: `stripe:${event.id}`,
    occurredAt: new Date(event.created * 1000).toISOString(),
    userId: null,
    customerId: null,
    source: { event: event.id, type: event.type, object: typeof obj.id === 'string' ? obj.id : null, customer: null },
  };
  const ignore = (detail: string, more: Partial<Common> = {}): StripeIgnore => ({
    ...base,
    ...more,
    source: { ...base.source, customer: more.customerId ?? null },
    action: 'ignore',
    detail,
    record: true,
  });

  const isSubscription = SUBSCRIPTION_TYPES.includes(event.type) || event.type === 'customer.subscription.deleted';
  const invoiceType = INVOICE_TYPES[event.type];
  if (!isSubscription && !invoiceType)
    return { ...ignore(`Stripe event type ${event.type} is not used by this server`), record: false };

  const parsed = (isSubscription ? subscriptionSchema : invoiceSchema).safeParse(obj);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return ignore(
      `data.object is not a ${isSubscription ? 'subscription' : 'invoice'} this server understands` +
        (issue ? ` (${issue.path.join('.') || 'object'}: ${issue.message})` : ''),
    );
  }

  if (parsed.data.object === 'subscription') {
    const sub = parsed.data;
    const customerId = idOf(sub.customer);
    const user = userFrom([
      [`metadata.user_id of subscription ${sub.id}`, sub.metadata],
      [`metadata.user_id of customer ${customerId}`, metadataOf(sub.customer)],
    ]);
    const known = { customerId, userId: user.userId };
    if (user.error) return ignore(user.error, known);
    const prices = sub.items.data.map((i) => i.price.id);
    const tier = highestTier(prices, tiers);
    if (!tier)
      return ignore(
        prices.length === 0
          ? `subscription ${sub.id} has no items`
          : `price ${prices.join(', ')} of subscription ${sub.id} has no tier in STRIPE_PRICE_TIERS`,
        known,
      );
    const apply = (t: PriceTier): StripeMapping => ({
      ...base,
      ...known,
      source: { ...base.source, customer: customerId },
      action: 'apply',
      type: 'tier.changed',
      tier: t,
    });
    if (event.type === 'customer.subscription.deleted' || FREE_STATUSES.includes(sub.status)) return apply('free');
    if (PRICED_STATUSES.includes(sub.status)) return apply(tier);
    if (sub.status === 'incomplete')
      return ignore(
        `subscription ${sub.id} is incomplete (its first payment is pending); the tier changes when it becomes active`,
        known,
      );
    return ignore(`status ${sub.status} of subscription ${sub.id} is not one this server maps`, known);
  }

  const inv = parsed.data;
  const customerId = inv.customer ? idOf(inv.customer) : null;
  const subscription = inv.parent?.subscription_details?.subscription ?? inv.subscription ?? null;
  const name = `invoice ${inv.id ?? '(no id)'}`;
  if (!subscription) return ignore(`${name} is not a subscription's invoice`, { customerId });
  const user = userFrom([
    [`parent.subscription_details.metadata.user_id of ${name}`, inv.parent?.subscription_details?.metadata],
    [`subscription_details.metadata.user_id of ${name}`, inv.subscription_details?.metadata],
    [`metadata.user_id of subscription ${idOf(subscription)}`, metadataOf(subscription)],
    [`metadata.user_id of customer ${customerId}`, inv.customer ? metadataOf(inv.customer) : null],
  ]);
  if (user.error) return ignore(user.error, { customerId, userId: null });
  return {
    ...base,
    customerId,
    userId: user.userId,
    source: { ...base.source, customer: customerId },
    action: 'apply',
    type: invoiceType!,
  };
}

const idOf = (v: string | { id: string }) => (typeof v === 'string' ? v : v.id);
const metadataOf = (v: string | { metadata?: Record<string, unknown> | null }) =>
  typeof v === 'string' ? null : (v.metadata ?? null);

/** The first `metadata.user_id` present, in the order given; one that is not a UUID is an error. */
function userFrom(candidates: [string, Record<string, unknown> | null | undefined][]): {
  userId: string | null;
  error?: string;
} {
  for (const [where, meta] of candidates) {
    const value = meta?.user_id;
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !UUID.test(value.trim()))
      return { userId: null, error: `${where} (${JSON.stringify(value).slice(0, 80)}) is not a UUID` };
    return { userId: value.trim().toLowerCase() };
  }
  return { userId: null };
}

function highestTier(prices: string[], tiers: PriceTiers): PriceTier | null {
  let best: PriceTier | null = null;
  for (const p of prices) {
    const t = tiers.get(p);
    if (t && (best === null || TIER_RANK[t] > TIER_RANK[best])) best = t;
  }
  return best;
}
