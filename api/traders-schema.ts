import { z } from 'zod';
import { klineIntervals } from '../machine-runtime/candles';
import { definitionBoundsError, traderDefinitionSchema, type TraderDefinition } from '../machine-runtime/trader-schema';
import type { Trader } from '../store/types';
import type { Problem } from './problem';

type FieldErrors = NonNullable<Problem['errors']>;

/** The name as the database bounds it (1–200 characters), trimmed. */
export const traderNameSchema = z.string().trim().min(1).max(200);

export const createTraderSchema = z.strictObject({
  name: traderNameSchema,
  definition: traderDefinitionSchema.describe('the trader: symbols, interval, filter, fireOn (machine-runtime schema)'),
  enabled: z.boolean().optional().describe('default true'),
});

export const updateTraderSchema = z
  .strictObject({
    name: traderNameSchema.optional(),
    definition: traderDefinitionSchema.optional(),
    enabled: z.boolean().optional().describe('false disables the trader (the machine stops running it)'),
  })
  .refine((b) => b.name !== undefined || b.definition !== undefined || b.enabled !== undefined, {
    message: 'send at least one of name, definition, enabled',
  });

export const traderSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  definition: z.unknown().describe('as stored: the definition with its defaults filled in'),
  enabled: z.boolean(),
  updatedAt: z
    .string()
    .describe('ISO 8601; moves on every change (the machine reloads a trader whose updatedAt moved)'),
});
export const traderListSchema = z.object({ traders: z.array(traderSchema), max: z.number().int() });

export const traderIdSchema = z.object({ id: z.uuid('must be a trader id (a UUID)') });

export const previewRequestSchema = z.strictObject({
  definition: traderDefinitionSchema,
  symbol: z
    .string()
    .regex(/^[A-Za-z0-9]{2,20}$/, 'must be a Binance symbol such as BTCUSDT')
    .transform((s) => s.toUpperCase())
    .optional()
    .describe("default: the definition's first symbol"),
  interval: z.enum(klineIntervals).optional().describe("default: the definition's interval"),
  candles: z.number().int().min(1).max(1000).default(500).describe('how many closed candles, newest last'),
});

export const previewFiringSchema = z.object({
  openTime: z.number().int().describe('epoch ms'),
  closeTime: z.number().int().describe('epoch ms'),
  close: z.number(),
  values: z.record(z.string(), z.number().nullable()).describe('every value the filter read at that candle'),
});
export const previewResponseSchema = z.object({
  symbol: z.string(),
  interval: z.string(),
  candles: z.number().int().describe('closed candles evaluated'),
  firings: z.array(previewFiringSchema),
  from: z.string().nullable().describe('open time of the first candle (ISO 8601)'),
  to: z.string().nullable().describe('close time of the last candle (ISO 8601)'),
});

export const validationResponseSchema = z.object({
  valid: z.boolean(),
  errors: z
    .array(z.object({ path: z.string(), message: z.string() }))
    .describe('as POST /v1/traders would answer them: each names its field from the body’s root'),
});

export const toTraderResponse = (t: Trader): z.infer<typeof traderSchema> => ({
  id: t.id,
  name: t.name,
  definition: t.definition,
  enabled: t.enabled,
  updatedAt: t.updatedAt.toISOString(),
});

/**
 * Parses a request body whose `definition` member is a trader definition: the runtime's bounds
 * first (size, depth, node count: checked without recursion, before zod recurses), then the schema.
 * Every error names its field from the body's root (`definition.filter.all.0.op`).
 */
export function parseWithDefinition<S extends z.ZodType>(
  schema: S,
  body: unknown,
): { success: true; data: z.infer<S> } | { success: false; errors: FieldErrors } {
  const definition = (body as { definition?: unknown } | null | undefined)?.definition;
  if (definition !== undefined) {
    const bounds = definitionBoundsError(definition);
    if (bounds) return { success: false, errors: [boundsField(bounds)] };
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return { success: true, data: parsed.data as z.infer<S> };
  return { success: false, errors: fieldErrors(parsed.error.issues) };
}

/** `filter: more than 500 …` → `{ path: 'definition.filter', message: 'more than 500 …' }`. */
function boundsField(error: string): FieldErrors[number] {
  const at = error.indexOf(': ');
  const where = at > 0 ? error.slice(0, at) : 'definition';
  return {
    path: where === 'definition' ? 'definition' : `definition.${where}`,
    message: at > 0 ? error.slice(at + 2) : error,
  };
}

type Issue = z.core.$ZodIssue;
type Located = { path: (string | number | symbol)[]; message: string };

/**
 * zod issues as field errors. A filter node is a union (a condition, or an `all` / `any` group), and
 * zod reports a failed union as one "Invalid input" at the node: here each union is replaced by the
 * branch that came closest (fewest problems, then the deepest), so the error points at the field.
 */
export function fieldErrors(issues: readonly Issue[]): FieldErrors {
  return resolve(issues, []).map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
}

function resolve(issues: readonly Issue[], base: Located['path']): Located[] {
  return issues.flatMap((issue): Located[] => {
    const path = [...base, ...issue.path];
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ path, message: issue.message }];
    let best: Located[] | undefined;
    for (const branch of issue.errors) {
      const resolved = resolve(branch, path);
      if (!best || better(resolved, best)) best = resolved;
    }
    return best!;
  });
}

const depth = (l: Located[]) => Math.max(0, ...l.map((i) => i.path.length));
const better = (a: Located[], b: Located[]) => a.length < b.length || (a.length === b.length && depth(a) > depth(b));

export type { TraderDefinition };
