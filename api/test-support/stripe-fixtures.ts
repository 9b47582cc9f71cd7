import { randomBytes } from 'node:crypto';

/**
 * Stripe events shaped as Stripe documents them (docs.stripe.com/api/events/object, /api/subscriptions/object,
 * /api/invoices/object; API version 2026-10-28.endive, the one stripe@23 pins): whole objects, not just
 * the fields we read, so a test fails when the mapping leans on something Stripe does not send.
 */

export const STRIPE_API_VERSION = '2026-10-28.endive';

/** `cus_…`, `sub_…`, `evt_…`: Stripe's ids are a prefix and 24 base62-ish characters. */
export const stripeId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

const nowSeconds = () => Math.floor(Date.now() / 1000);

export function stripePrice(id: string, unitAmount = 2900) {
  return {
    id,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: 1_730_000_000,
    currency: 'eur',
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: 'prod_Q1w2e3r4t5y6u7',
    recurring: { interval: 'month', interval_count: 1, meter: null, usage_type: 'licensed' },
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: unitAmount,
    unit_amount_decimal: String(unitAmount),
  };
}

export function stripeSubscription(o: {
  id?: string;
  customer: string | Record<string, unknown>;
  priceIds: string[];
  status?: string;
  metadata?: Record<string, string>;
  created?: number;
}) {
  const id = o.id ?? stripeId('sub');
  const created = o.created ?? nowSeconds();
  return {
    id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: created,
    billing_cycle_anchor_config: null,
    billing_mode: { type: 'flexible', flexible: { proration_discounts: 'included' }, updated_at: created },
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: o.status === 'canceled' ? created : null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created,
    currency: 'eur',
    customer: o.customer,
    days_until_due: null,
    default_payment_method: 'pm_1QazWsxEdcRfvTgb',
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: o.status === 'canceled' ? created : null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: {
      object: 'list',
      data: o.priceIds.map((priceId, i) => ({
        id: `si_${id.slice(4, 16)}${i}`,
        object: 'subscription_item',
        billing_thresholds: null,
        created,
        current_period_end: created + 30 * 86_400,
        current_period_start: created,
        discounts: [],
        metadata: {},
        price: stripePrice(priceId),
        quantity: 1,
        subscription: id,
        tax_rates: [],
      })),
      has_more: false,
      total_count: o.priceIds.length,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: stripeId('in'),
    livemode: false,
    metadata: o.metadata ?? {},
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: created,
    status: o.status ?? 'active',
    test_clock: null,
    transfer_data: null,
    trial_end: null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: null,
  };
}

/** A subscription's invoice: since API version 2025-03-31.basil its subscription is under `parent`. */
export function stripeInvoice(o: {
  customer: string;
  subscription?: string | null;
  subscriptionMetadata?: Record<string, string>;
  paid: boolean;
  created?: number;
}) {
  const created = o.created ?? nowSeconds();
  const id = stripeId('in');
  return {
    id,
    object: 'invoice',
    account_country: 'DE',
    account_name: 'Cloud Execution',
    amount_due: 2900,
    amount_overpaid: 0,
    amount_paid: o.paid ? 2900 : 0,
    amount_remaining: o.paid ? 0 : 2900,
    attempt_count: 1,
    attempted: true,
    auto_advance: !o.paid,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    billing_reason: 'subscription_cycle',
    collection_method: 'charge_automatically',
    created,
    currency: 'eur',
    customer: o.customer,
    customer_email: 'trader@example.com',
    customer_name: null,
    default_payment_method: null,
    description: null,
    discounts: [],
    due_date: null,
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_1Test/${id}`,
    issuer: { type: 'self' },
    last_finalization_error: null,
    lines: {
      object: 'list',
      data: [
        {
          id: stripeId('il'),
          object: 'line_item',
          amount: 2900,
          currency: 'eur',
          description: '1 × Elite (at €29.00 / month)',
          period: { start: created, end: created + 30 * 86_400 },
          quantity: 1,
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${id}/lines`,
    },
    livemode: false,
    metadata: {},
    next_payment_attempt: o.paid ? null : created + 3 * 86_400,
    number: 'CE-0001',
    parent:
      o.subscription === null
        ? null
        : {
            type: 'subscription_details',
            quote_details: null,
            subscription_details: {
              metadata: o.subscriptionMetadata ?? {},
              subscription: o.subscription ?? stripeId('sub'),
            },
          },
    period_end: created,
    period_start: created - 30 * 86_400,
    status: o.paid ? 'paid' : 'open',
    status_transitions: {
      finalized_at: created,
      marked_uncollectible_at: null,
      paid_at: o.paid ? created : null,
      voided_at: null,
    },
    subtotal: 2900,
    total: 2900,
  };
}

/** The envelope: `created` (seconds) is the event's instant, which orders it. */
export function stripeEvent(type: string, object: Record<string, unknown>, o: { created?: number; id?: string } = {}) {
  return {
    id: o.id ?? stripeId('evt'),
    object: 'event',
    api_version: STRIPE_API_VERSION,
    created: o.created ?? nowSeconds(),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: stripeId('req'), idempotency_key: null },
    type,
  };
}
