import { randomUUID } from 'node:crypto';
import { loadApiConfig } from './config';
import { mapStripeEvent, parsePriceTiers, stripeEventSchema, type PriceTiers } from './stripe-events';
import { stripeEvent, stripeId, stripeInvoice, stripeSubscription } from './test-support/stripe-fixtures';

const ELITE = 'price_1EliteMonthly';
const PRO = 'price_1ProMonthly';
const tiers: PriceTiers = new Map([
  [ELITE, 'elite'],
  [PRO, 'pro'],
]);
const created = 1_798_000_000;
const map = (e: ReturnType<typeof stripeEvent>) => mapStripeEvent(stripeEventSchema.parse(e), tiers);

describe('STRIPE_PRICE_TIERS', () => {
  test('price:tier pairs (or price=tier), spaces and a trailing comma allowed', () => {
    expect(parsePriceTiers('price_123:elite, price_456=pro ,price_789:free,')).toEqual({
      tiers: new Map([
        ['price_123', 'elite'],
        ['price_456', 'pro'],
        ['price_789', 'free'],
      ]),
    });
  });

  test.each([
    ['price_123', /entry "price_123" that is not price:tier/],
    ['price_123:elite,oops', /entry "oops" that is not price:tier/],
    ['price_123:gold', /entry "price_123:gold" whose tier is not one of free, pro, elite/],
    ['price_123:anonymous', /whose tier is not one of/],
    ['price_123:elite,price_123:pro', /lists price "price_123" twice/],
    [' , ', /lists no price:tier entry/],
  ])('%j is refused with a sentence naming the entry', (value, message) => {
    expect(parsePriceTiers(value)).toEqual({ error: expect.stringMatching(message) });
  });

  test('the config names the variable and the entry; secrets are named by position, never shown', () => {
    expect(() =>
      loadApiConfig({ SUPABASE_JWT_SECRET: 'x'.repeat(32), STRIPE_PRICE_TIERS: 'price_1:elite,bad' }),
    ).toThrow(/STRIPE_PRICE_TIERS has an entry "bad" that is not price:tier/);
    const secretErr = (() => {
      try {
        loadApiConfig({ SUPABASE_JWT_SECRET: 'x'.repeat(32), STRIPE_WEBHOOK_SECRET: 'whsec_abcdefgh12,sk_live_oops' });
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(secretErr).toMatch(/STRIPE_WEBHOOK_SECRET must be a comma-separated list .*entry 2 is not one/);
    expect(secretErr).not.toContain('sk_live_oops');
    expect(
      loadApiConfig({ SUPABASE_JWT_SECRET: 'x'.repeat(32), STRIPE_WEBHOOK_SECRET: 'whsec_old12345, whsec_new67890' }),
    ).toMatchObject({
      STRIPE_WEBHOOK_SECRET: ['whsec_old12345', 'whsec_new67890'],
      STRIPE_WEBHOOK_TOLERANCE_SECONDS: 300,
    });
    expect(() => loadApiConfig({ SUPABASE_JWT_SECRET: 'x'.repeat(32), STRIPE_WEBHOOK_TOLERANCE_SECONDS: '0' })).toThrow(
      /STRIPE_WEBHOOK_TOLERANCE_SECONDS must be at least 1 second/,
    );
  });
});

describe('mapStripeEvent: subscriptions', () => {
  const userId = randomUUID();
  const customer = stripeId('cus');
  const sub = (o: Partial<Parameters<typeof stripeSubscription>[0]> = {}) =>
    stripeSubscription({ customer, priceIds: [ELITE], metadata: { user_id: userId }, ...o });

  test('created/updated → tier.changed with the price’s tier, at `created`, id stripe:<evt>', () => {
    const e = stripeEvent('customer.subscription.created', sub(), { created });
    expect(map(e)).toEqual({
      action: 'apply',
      type: 'tier.changed',
      tier: 'elite',
      id: `stripe:${e.id}`,
      occurredAt: new Date(created * 1000).toISOString(),
      userId,
      customerId: customer,
      source: { event: e.id, type: 'customer.subscription.created', object: e.data.object.id, customer },
    });
    expect(map(stripeEvent('customer.subscription.updated', sub({ priceIds: [PRO] })))).toMatchObject({
      action: 'apply',
      tier: 'pro',
    });
  });

  test.each([
    ['active', 'elite'],
    ['trialing', 'elite'],
    ['past_due', 'elite'],
    ['canceled', 'free'],
    ['unpaid', 'free'],
    ['incomplete_expired', 'free'],
    ['paused', 'free'],
  ])('status %s → %s', (status, tier) => {
    expect(map(stripeEvent('customer.subscription.updated', sub({ status })))).toMatchObject({ action: 'apply', tier });
  });

  test('incomplete and unknown statuses change nothing and say why', () => {
    expect(map(stripeEvent('customer.subscription.created', sub({ status: 'incomplete' })))).toMatchObject({
      action: 'ignore',
      record: true,
      detail: expect.stringMatching(/is incomplete \(its first payment is pending\)/),
    });
    expect(map(stripeEvent('customer.subscription.updated', sub({ status: 'hibernating' })))).toMatchObject({
      action: 'ignore',
      detail: expect.stringMatching(/status hibernating of subscription sub_\w+ is not one this server maps/),
    });
  });

  test('deleted → free, whatever the status says', () => {
    expect(map(stripeEvent('customer.subscription.deleted', sub({ status: 'active' })))).toMatchObject({
      action: 'apply',
      type: 'tier.changed',
      tier: 'free',
    });
  });

  test('several prices: the highest known tier; none known: ignored, naming the price', () => {
    expect(
      map(stripeEvent('customer.subscription.updated', sub({ priceIds: ['price_addon', PRO, ELITE] }))),
    ).toMatchObject({
      tier: 'elite',
    });
    const unknown = map(stripeEvent('customer.subscription.deleted', sub({ priceIds: ['price_merch'] })));
    expect(unknown).toMatchObject({
      action: 'ignore',
      record: true,
      userId,
      detail: expect.stringMatching(/^price price_merch of subscription sub_\w+ has no tier in STRIPE_PRICE_TIERS$/),
    });
  });

  test('the user: subscription metadata first, then an expanded customer’s, else none (the route looks it up)', () => {
    const other = randomUUID();
    const expanded = { id: customer, object: 'customer', metadata: { user_id: other }, email: 'a@example.com' };
    expect(map(stripeEvent('customer.subscription.created', sub({ customer: expanded })))).toMatchObject({
      userId,
      customerId: customer,
    });
    expect(map(stripeEvent('customer.subscription.created', sub({ customer: expanded, metadata: {} })))).toMatchObject({
      action: 'apply',
      userId: other,
      customerId: customer,
    });
    expect(map(stripeEvent('customer.subscription.created', sub({ metadata: {} })))).toMatchObject({
      action: 'apply',
      userId: null,
      customerId: customer,
    });
  });

  test('a metadata.user_id that is not a UUID is ignored (recorded), quoting it', () => {
    expect(map(stripeEvent('customer.subscription.created', sub({ metadata: { user_id: 'alice' } })))).toMatchObject({
      action: 'ignore',
      record: true,
      userId: null,
      detail: expect.stringMatching(/^metadata.user_id of subscription sub_\w+ \("alice"\) is not a UUID$/),
    });
  });

  test('a data.object that is not a subscription is ignored with the path', () => {
    const e = stripeEvent('customer.subscription.updated', { id: 'sub_x', object: 'subscription', status: 'active' });
    expect(map(e)).toMatchObject({
      action: 'ignore',
      record: true,
      detail: expect.stringMatching(/^data.object is not a subscription this server understands \(customer: /),
    });
  });
});

describe('mapStripeEvent: invoices and other types', () => {
  const customer = stripeId('cus');

  test('invoice.payment_failed → payment.failed, invoice.paid → payment.recovered; the user from the parent’s metadata', () => {
    const userId = randomUUID();
    const failed = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ customer, paid: false, subscriptionMetadata: { user_id: userId } }),
      { created },
    );
    expect(map(failed)).toMatchObject({
      action: 'apply',
      type: 'payment.failed',
      userId,
      customerId: customer,
      occurredAt: new Date(created * 1000).toISOString(),
    });
    expect(map(stripeEvent('invoice.paid', stripeInvoice({ customer, paid: true })))).toMatchObject({
      action: 'apply',
      type: 'payment.recovered',
      userId: null,
      customerId: customer,
    });
  });

  test('older API versions: subscription and subscription_details at the top level', () => {
    const userId = randomUUID();
    const { parent: _gone, ...invoice } = stripeInvoice({ customer, paid: true });
    const legacy = {
      ...invoice,
      subscription: stripeId('sub'),
      subscription_details: { metadata: { user_id: userId } },
    };
    expect(map(stripeEvent('invoice.paid', legacy))).toMatchObject({ action: 'apply', userId });
  });

  test('an invoice of no subscription changes no payment state', () => {
    expect(map(stripeEvent('invoice.paid', stripeInvoice({ customer, paid: true, subscription: null })))).toMatchObject(
      {
        action: 'ignore',
        record: true,
        customerId: customer,
        detail: expect.stringMatching(/is not a subscription's invoice$/),
      },
    );
  });

  test('types we do not use: ignored, not recorded', () => {
    expect(map(stripeEvent('charge.succeeded', { id: 'ch_1', object: 'charge' }))).toMatchObject({
      action: 'ignore',
      record: false,
      detail: 'Stripe event type charge.succeeded is not used by this server',
    });
  });
});
