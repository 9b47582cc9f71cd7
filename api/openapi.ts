import { buildComponents } from './openapi/components';
import { machinePagePaths, machinePaths } from './openapi/machine-paths';
import { opsPaths } from './openapi/ops-paths';
import { traderPaths } from './openapi/trader-paths';
import { webhookPaths } from './openapi/webhook-paths';

export { healthSchema } from './openapi/components';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with (zod's
 * JSON Schema output is 2020-12, which OpenAPI 3.1 uses as is). Each area's paths live in `openapi/`.
 */
export function buildOpenApi() {
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
      schemas: buildComponents(),
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
    // In the document's published order (clients and diffs see the same document as before).
    paths: {
      ...machinePaths(),
      ...traderPaths(),
      ...machinePagePaths(),
      ...webhookPaths(),
      ...opsPaths(),
    },
  };
}
