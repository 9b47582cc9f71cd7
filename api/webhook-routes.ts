import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceStore } from '../store/types';
import type { ApiConfig } from './config';
import type { ApiMetrics } from './metrics';
import { HttpProblem } from './problem';
import { registerStripeWebhook } from './stripe-webhook';
import { applyBillingEvent, parseBillingEvent, SIGNATURE_HEADER, verifyWebhookSignature } from './webhooks';

/**
 * `POST /v1/webhooks/billing`: signed billing events, recorded and applied once by event id, then the
 * user's workflow is nudged (api/webhooks.ts has the rules). Raw body: the signature is over the exact bytes.
 * `POST /v1/webhooks/stripe` shares the scope: Stripe's events, mapped to the same events (api/stripe-webhook.ts).
 */
export async function registerWebhookRoutes(
  app: FastifyInstance,
  deps: {
    config: ApiConfig;
    temporal: Client;
    store: ServiceStore;
    metrics: ApiMetrics;
    gracePeriodMs: number;
    resumeAfterRecovery(userId: string): Promise<boolean>;
  },
) {
  const { config, temporal, store, metrics, gracePeriodMs, resumeAfterRecovery } = deps;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    scope.post(
      '/v1/webhooks/billing',
      { bodyLimit: config.API_WEBHOOK_BODY_LIMIT_BYTES },
      async (req: FastifyRequest, reply: FastifyReply) => {
        if (!config.WEBHOOK_SECRET) {
          metrics.webhooks.inc({ type: 'unknown', result: 'not_configured' });
          throw new HttpProblem(503, 'billing webhooks are not configured on this server (WEBHOOK_SECRET)');
        }
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const header = req.headers[SIGNATURE_HEADER];
        try {
          verifyWebhookSignature(config.WEBHOOK_SECRET, typeof header === 'string' ? header : undefined, raw);
        } catch (err) {
          metrics.webhooks.inc({ type: 'unknown', result: 'bad_signature' });
          throw err;
        }
        let event;
        try {
          event = parseBillingEvent(raw);
        } catch (err) {
          metrics.webhooks.inc({ type: 'unknown', result: 'malformed' });
          throw err;
        }
        const result = await applyBillingEvent({ temporal, store, gracePeriodMs, resumeAfterRecovery }, event);
        metrics.webhooks.inc({ type: event.type, result: result.status });
        req.log.info({ eventId: event.id, type: event.type, userId: event.userId, ...result }, 'billing event');
        return reply.code(200).send(result);
      },
    );
    registerStripeWebhook(scope, { config, metrics, temporal, store, gracePeriodMs, resumeAfterRecovery });
  });
}
