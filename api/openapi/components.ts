import { z } from 'zod';
import {
  machineStatusResponseSchema,
  provisionRequestSchema,
  provisionResponseSchema,
  stopResponseSchema,
} from '../machines';
import { groupSchema, operandSchema, traderDefinitionSchema } from '../../machine-runtime/trader-schema';
import { optionsResponseSchema } from '../options';
import { problemSchema } from '../problem';
import {
  createTraderSchema,
  previewRequestSchema,
  previewResponseSchema,
  traderListSchema,
  traderSchema,
  updateTraderSchema,
  validationResponseSchema,
} from '../traders-schema';
import { billingEventSchema, webhookResultSchema } from '../webhooks';
import { timelinePageSchema, uptimeResponseSchema } from '../timeline';
import { stripeEventSchema } from '../stripe-events';
import { signalListSchema } from '../signals';
import { klinesResponseSchema } from '../market';

export const healthSchema = z.object({
  ok: z.boolean().describe('the process is alive (always true when it answers)'),
  temporal: z.object({ ok: z.boolean(), error: z.string().optional() }),
  store: z.object({ ok: z.boolean(), error: z.string().optional() }),
});

/** The document's named schemas (`#/components/schemas/<id>`): the zod schemas the routes validate with. */
export const componentSchemas = {
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
export type ComponentId = keyof typeof componentSchemas;

/** `components.schemas`: zod's JSON Schema (2020-12, as OpenAPI 3.1 uses it) of each, `$ref`s between them. */
export function buildComponents() {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(componentSchemas)) registry.add(schema, { id });
  const json = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input' });
  return Object.fromEntries(
    Object.entries(json.schemas).map(([id, s]) => {
      const { $schema: _drop, ...rest } = s as Record<string, unknown>;
      return [id, rest];
    }),
  );
}

// --- the pieces the path modules describe operations with -------------------------------------------

export const ref = (id: ComponentId) => ({ $ref: `#/components/schemas/${id}` });
export const json200 = (id: ComponentId, description: string) => ({
  description,
  content: { 'application/json': { schema: ref(id) } },
});
export const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
export const authErrors = {
  '401': problem('missing, expired or invalid access token'),
  '429': problem('too many requests for this user'),
};
export const security = [{ bearer: [] }];
export const body = (id: ComponentId) => ({ required: true, content: { 'application/json': { schema: ref(id) } } });

/** Query parameters from a route's zod query schema (the same one the route validates with). */
export const queryParams = (schema: z.ZodObject) => {
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
