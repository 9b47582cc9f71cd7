import { z } from 'zod';
import {
  machineStatusResponseSchema,
  provisionRequestSchema,
  provisionResponseSchema,
  stopResponseSchema,
} from './machines';
import { groupSchema, operandSchema, traderDefinitionSchema } from '../machine-runtime/trader-schema';
import { optionsResponseSchema } from './options';
import { problemSchema } from './problem';
import {
  createTraderSchema,
  previewRequestSchema,
  previewResponseSchema,
  traderListSchema,
  traderSchema,
  updateTraderSchema,
  validationResponseSchema,
} from './traders-schema';
import { billingEventSchema, webhookResultSchema } from './webhooks';
import { timelinePageSchema, timelineQuerySchema, uptimeQuerySchema, uptimeResponseSchema } from './timeline';
import { stripeEventSchema } from './stripe-events';
import { signalListSchema, signalQuerySchema } from './signals';
import { klinesQuerySchema, klinesResponseSchema } from './market';

export const healthSchema = z.object({
  ok: z.boolean().describe('the process is alive (always true when it answers)'),
  temporal: z.object({ ok: z.boolean(), error: z.string().optional() }),
  store: z.object({ ok: z.boolean(), error: z.string().optional() }),
});

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with (zod's
 * JSON Schema output is 2020-12, which OpenAPI 3.1 uses as is).
 */
export function buildOpenApi() {
  const registry = z.registry<{ id: string }>();
  const schemas = {
    ProvisionRequest: provisionRequestSchema,
    ProvisionResponse: provisionResponseSchema,
    MachineStatus: machineStatusResponseSchema,
    StopResponse: stopResponseSchema,
    BillingEvent: billingEventSchema,
    WebhookResult: webhookResultSchema,
    StripeEvent: stripeEventSchema,
    Health: healthSchema,
    Problem: problemSchema,
    TraderDefinition: traderDefinitionSchema,
    FilterGroup: groupSchema,
    Operand: operandSchema,
    TraderCreate: createTraderSchema,
    TraderUpdate: updateTraderSchema,
    Trader: traderSchema,
    TraderList: traderListSchema,
    TraderPreviewRequest: previewRequestSchema,
    TraderPreview: previewResponseSchema,
    Options: optionsResponseSchema,
    SignalList: signalListSchema,
    TraderValidation: validationResponseSchema,
    Klines: klinesResponseSchema,
    TimelinePage: timelinePageSchema,
    Uptime: uptimeResponseSchema,
  };
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const json = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input' });
  const components = Object.fromEntries(
    Object.entries(json.schemas).map(([id, s]) => {
      const { $schema: _drop, ...rest } = s as Record<string, unknown>;
      return [id, rest];
    }),
  );

  const ref = (id: keyof typeof schemas) => ({ $ref: `#/components/schemas/${id}` });
  const json200 = (id: keyof typeof schemas, description: string) => ({
    description,
    content: { 'application/json': { schema: ref(id) } },
  });
  const problem = (description: string) => ({
    description,
    content: { 'application/problem+json': { schema: ref('Problem') } },
  });
  const authErrors = {
    '401': problem('missing, expired or invalid access token'),
    '429': problem('too many requests for this user'),
  };
  const security = [{ bearer: [] }];
  const body = (id: keyof typeof schemas) => ({ required: true, content: { 'application/json': { schema: ref(id) } } });
  const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }];
  const noStore = { '501': problem('this server has no user store for traders') };
  /** Query parameters from a route's zod query schema (the same one the route validates with). */
  const queryParams = (schema: z.ZodObject) => {
    const js = z.toJSONSchema(schema, { io: 'input' }) as {
      properties: Record<string, object>;
      required?: string[];
    };
    return Object.entries(js.properties).map(([name, s]) => ({
      name,
      in: 'query',
      required: js.required?.includes(name) ?? false,
      schema: s,
    }));
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'Cloud Execution API',
      version: '1.0.0',
      description:
        'One always-on cloud machine per elite user. Authenticate with a Supabase access token ' +
        '(`Authorization: Bearer <jwt>`); the user is the token subject. Errors are RFC 9457 problem documents.',
    },
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Supabase access token' },
        webhookSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'x-signature',
          description: 't=<unix>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>.<raw body>")>, 5-minute tolerance',
        },
        stripeSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'Stripe-Signature',
          description:
            "Stripe's signature, verified with the stripe package against any secret of STRIPE_WEBHOOK_SECRET; STRIPE_WEBHOOK_TOLERANCE_SECONDS (300)",
        },
      },
    },
    paths: {
      '/v1/machines': {
        post: {
          summary: 'Provision my machine (idempotent)',
          security,
          requestBody: { required: false, content: { 'application/json': { schema: ref('ProvisionRequest') } } },
          responses: {
            '202': {
              ...json200('ProvisionResponse', 'the workflow owning the machine runs'),
              headers: { Location: { schema: { type: 'string' }, description: '/v1/machines/me' } },
            },
            '400': problem('malformed JSON or invalid body, or a region not offered (GET /v1/options)'),
            '402': problem('payment overdue and its grace period has ended ("payment overdue since …, grace ended …")'),
            '403': problem('not on the elite tier'),
            '409': problem('the machine is stopping'),
            ...authErrors,
          },
        },
      },
      '/v1/machines/me': {
        get: {
          summary: 'The status of my machine',
          security,
          responses: {
            '200': json200(
              'MachineStatus',
              'as recorded at its last transition (checked against its running workflow)',
            ),
            '404': problem('you never had a machine'),
            ...authErrors,
          },
        },
      },
      '/v1/machines/me/stop': {
        post: {
          summary: 'Stop my machine',
          security,
          responses: {
            '202': json200('StopResponse', 'stop requested; poll the status until `stopped`'),
            '404': problem('you never had a machine'),
            '409': problem('your machine is not running'),
            ...authErrors,
          },
        },
      },
      '/v1/machines/me/stream': {
        get: {
          summary: 'WebSocket to my machine (hello, state, metrics, signal, candle messages)',
          description:
            'Browsers authenticate with `Sec-WebSocket-Protocol: bearer, <jwt>` (the server answers `bearer`), ' +
            'others with `Authorization`. Closes with 4404 when no machine runs, 4429 above the per-user limit, ' +
            '4502 when the machine cannot be reached, 4503 when it goes away.',
          security,
          responses: {
            '101': { description: 'switching protocols' },
            '426': problem('not a WebSocket upgrade request'),
            ...authErrors,
          },
        },
      },
      '/v1/traders': {
        get: {
          summary: 'My traders (and how many I may have)',
          security,
          responses: { '200': json200('TraderList', 'oldest first'), ...noStore, ...authErrors },
        },
        post: {
          summary: 'Create a trader; my running machine reloads its traders',
          security,
          requestBody: body('TraderCreate'),
          responses: {
            '201': {
              ...json200('Trader', 'created'),
              headers: { Location: { schema: { type: 'string' }, description: '/v1/traders/<id>' } },
            },
            '400': problem('invalid body; `errors` point at the field, e.g. definition.filter.all.0.op'),
            '409': problem('at the per-user limit of traders (API_MAX_TRADERS_PER_USER)'),
            ...noStore,
            ...authErrors,
          },
        },
      },
      '/v1/traders/{id}': {
        get: {
          summary: 'One of my traders',
          security,
          parameters: idParam,
          responses: {
            '200': json200('Trader', 'the trader'),
            '400': problem('not a UUID'),
            '404': problem('no such trader of mine'),
            ...noStore,
            ...authErrors,
          },
        },
        patch: {
          summary: 'Change name, definition or enabled (enable/disable); my running machine reloads',
          security,
          parameters: idParam,
          requestBody: body('TraderUpdate'),
          responses: {
            '200': json200('Trader', 'changed'),
            '400': problem('invalid body or id; `errors` point at the field'),
            '404': problem('no such trader of mine'),
            ...noStore,
            ...authErrors,
          },
        },
        delete: {
          summary: 'Delete a trader (and its signals); my running machine reloads',
          security,
          parameters: idParam,
          responses: {
            '204': { description: 'deleted' },
            '400': problem('not a UUID'),
            '404': problem('no such trader of mine'),
            ...noStore,
            ...authErrors,
          },
        },
      },
      '/v1/traders/preview': {
        post: {
          summary: 'How often a definition would have fired over the last closed candles (the runtime engine)',
          security,
          requestBody: body('TraderPreviewRequest'),
          responses: {
            '200': json200('TraderPreview', 'the firings, oldest first'),
            '400': problem('invalid body; `errors` point at the field'),
            '422': problem('Binance does not know the symbol'),
            '502': problem('Binance did not answer'),
            ...authErrors,
          },
        },
      },
      '/v1/traders/validate': {
        post: {
          summary: 'What POST /v1/traders would say of a body, without saving it (the editor, while typing)',
          security,
          requestBody: body('TraderCreate'),
          responses: {
            '200': json200('TraderValidation', '`valid`, or the errors at their fields'),
            ...authErrors,
          },
        },
      },
      '/v1/signals': {
        get: {
          summary: 'My signals, newest first, with the values that fired them and the AI note (paged)',
          security,
          parameters: queryParams(signalQuerySchema),
          responses: {
            '200': json200('SignalList', '`next` is the cursor of the next, older page'),
            '400': problem('invalid query; `errors` point at the parameter'),
            ...noStore,
            ...authErrors,
          },
        },
      },
      '/v1/market/klines': {
        get: {
          summary: 'Recent closed candles of one stream from Binance (the chart’s backfill; cached a few seconds)',
          security,
          parameters: queryParams(klinesQuerySchema),
          responses: {
            '200': json200('Klines', 'oldest first; the candle still forming is left out'),
            '400': problem('invalid query'),
            '422': problem('Binance does not know the symbol'),
            '502': problem('Binance did not answer'),
            ...authErrors,
          },
        },
      },
      '/v1/machines/me/events': {
        get: {
          summary: 'My machine’s status as server-sent events: at once and on every change',
          description:
            '`event: status` carries what GET /v1/machines/me answers (`null`: no machine); `event: error` a ' +
            'failed read (the stream stays open); `event: expired` ends the stream when the token expires. ' +
            'Every open page of a user shares one status poller; the connection counts once against the ' +
            'status budget. Send the token as `Authorization: Bearer` (fetch; EventSource cannot).',
          security,
          responses: {
            '200': { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '429': problem('too many open event streams for this user, or too many requests'),
            '401': problem('missing, expired or invalid access token'),
          },
        },
      },
      '/v1/machines/me/timeline': {
        get: {
          summary: 'My machine’s and my billing’s history in one list, newest first (paged)',
          description:
            'Transitions, billing events (applied, and ignored ones with why), self-heals and their causes, ' +
            'image rollouts and operator actions. Every entry has a reason code (docs/technical-description.md, ' +
            '"Reason codes") and a sentence. Only the caller’s own rows exist here (RLS).',
          security,
          parameters: queryParams(timelineQuerySchema),
          responses: {
            '200': json200('TimelinePage', '`next` is the cursor of the next, older page'),
            '400': problem('invalid query; `errors` point at the parameter'),
            '501': problem('this server has no user store'),
            ...authErrors,
          },
        },
      },
      '/v1/machines/me/uptime': {
        get: {
          summary: 'My uptime ledger: minutes per UTC day entitled, running healthy, and down by cause; the SLO',
          description:
            'Down by cause: ours (unhealthy, self-heal, our bugs), Fly (host failure, machine gone, API outage), ' +
            'stopped by the user, billing (downgrade, payment overdue). Each calendar month against ' +
            'UPTIME_SLO_PERCENT (only ours and Fly count against it) with the credit owed. At most 93 days.',
          security,
          parameters: queryParams(uptimeQuerySchema.in),
          responses: {
            '200': json200('Uptime', 'one entry per day of the range, totals, months'),
            '400': problem('invalid dates or range; `errors` point at the parameter'),
            '501': problem('this server has no user store'),
            ...authErrors,
          },
        },
      },
      '/v1/options': {
        get: {
          summary: 'Regions and CPU priorities a machine may start with, and the defaults',
          responses: { '200': json200('Options', 'from API_REGIONS and the machine sizes') },
        },
      },
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
      '/healthz': {
        get: {
          summary: 'Liveness, with Temporal and store reachability',
          responses: { '200': json200('Health', 'alive') },
        },
      },
      '/metrics': {
        get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } },
      },
      '/': { get: { summary: 'The dashboard page', responses: { '200': { description: 'HTML' } } } },
    },
  };
}
