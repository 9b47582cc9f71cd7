import { json200, problem, ref } from './components';

/** What billing sends: the signed billing webhook and Stripe's (`webhook-routes.ts`). */
export const webhookPaths = () => ({
  '/v1/webhooks/billing': {
    post: {
      summary: 'Billing events (signed)',
      security: [{ webhookSignature: [] }],
      requestBody: { required: true, content: { 'application/json': { schema: ref('BillingEvent') } } },
      responses: {
        '200': json200('WebhookResult', 'applied, recorded, or a duplicate'),
        '400': problem('malformed JSON or not a billing event'),
        '401': problem('missing, malformed, stale or wrong signature'),
        '413': problem('body too large'),
        '503': problem('webhooks are not configured (no WEBHOOK_SECRET)'),
      },
    },
  },
  '/v1/webhooks/stripe': {
    post: {
      summary: 'Stripe events (signed by Stripe), mapped to the billing events',
      description:
        'customer.subscription.created/updated → tier.changed (tier of the price in STRIPE_PRICE_TIERS), ' +
        'customer.subscription.deleted → tier.changed free, invoice.payment_failed → payment.failed, ' +
        'invoice.paid → payment.recovered; recorded once as `stripe:<event id>`, ordered by `created`. ' +
        'Every verified event is a 200, also when it changes nothing (`ignored`, with the reason).',
      security: [{ stripeSignature: [] }],
      requestBody: { required: true, content: { 'application/json': { schema: ref('StripeEvent') } } },
      responses: {
        '200': json200('WebhookResult', 'applied, ignored (with the reason), or a duplicate'),
        '400': problem('missing, malformed, stale or wrong Stripe-Signature, or not a Stripe event'),
        '413': problem('body too large'),
        '503': problem('Stripe webhooks are not configured (no STRIPE_WEBHOOK_SECRET)'),
      },
    },
  },
});
