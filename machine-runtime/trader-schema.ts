import { z } from 'zod';
import { klineIntervals } from './candles';

/**
 * Bounds of one definition, checked by `parseTraderDefinition` before zod sees it (zod recurses:
 * ~485 nested groups overflowed the stack). The API can validate with the same function.
 */
/** Compact JSON (`JSON.stringify`), in UTF-8 bytes. The database holds ≤ 64 KB of jsonb text. */
export const MAX_DEFINITION_BYTES = 32 * 1024;
/** Groups nested in groups; the top-level `filter` is 1. */
export const MAX_FILTER_DEPTH = 32;
/** Conditions and groups in one filter, all levels together. */
export const MAX_FILTER_NODES = 500;
/** Items in one `all` / `any`. */
export const MAX_GROUP_ITEMS = 50;
export const MAX_SYMBOLS = 200;
/**
 * Per machine (all enabled traders together): distinct indicator instances, one per symbol ×
 * interval × indicator settings (price and volume count once per stream: each stream also holds its
 * 500-candle buffer). ~33 KB each at worst (a 28 KB candle buffer, a Bollinger(500) window), so the
 * bound costs at most ~35 MB of the 160 MB heap.
 */
export const MAX_INDICATOR_INSTANCES = 1_000;
/** Per machine: compiled conditions, a trader's conditions × its symbols (one closure each). */
export const MAX_COMPILED_CONDITIONS = 100_000;
/** Plain JSON nesting anywhere in a definition: enough for MAX_FILTER_DEPTH groups of conditions. */
const MAX_JSON_DEPTH = 2 * MAX_FILTER_DEPTH + 3;

const period = (max = 500) => z.number().int().min(1).max(max);

/** Values a condition can compare. Every indicator comes from `trading-signals` (see indicators.ts). */
export const operandSchema = z.discriminatedUnion('indicator', [
  z.object({ indicator: z.literal('price'), field: z.enum(['close', 'open', 'high', 'low']).default('close') }),
  z.object({ indicator: z.literal('rsi'), period: period().default(14) }),
  z.object({ indicator: z.literal('ema'), period: period() }),
  z.object({ indicator: z.literal('sma'), period: period() }),
  z.object({
    indicator: z.literal('macd'),
    fast: period().default(12),
    slow: period().default(26),
    signal: period().default(9),
    output: z.enum(['macd', 'signal', 'histogram']).default('macd'),
  }),
  z.object({
    indicator: z.literal('bollinger'),
    period: period().default(20),
    stdDev: z.number().positive().max(10).default(2),
    output: z.enum(['upper', 'middle', 'lower']).default('middle'),
  }),
  z.object({ indicator: z.literal('atr'), period: period().default(14) }),
  z.object({ indicator: z.literal('volume') }),
  /** Simple average of volume over `period` candles. */
  z.object({ indicator: z.literal('volumeSma'), period: period().default(20) }),
  /** Volume divided by its `period`-candle average: 2 means twice the usual volume. */
  z.object({ indicator: z.literal('volumeRatio'), period: period().default(20) }),
  /** Percent change of the close over `period` candles. Bounded by the candle buffer. */
  z.object({ indicator: z.literal('change'), period: period(499) }),
]);
export type Operand = z.infer<typeof operandSchema>;

export const comparators = ['>', '>=', '<', '<=', 'crossesAbove', 'crossesBelow'] as const;

export const conditionSchema = z.object({
  left: operandSchema,
  op: z.enum(comparators),
  right: z.union([z.number(), operandSchema]),
});
export type Condition = z.infer<typeof conditionSchema>;

export type FilterGroup = { all: (Condition | FilterGroup)[] } | { any: (Condition | FilterGroup)[] };

const nodeSchema: z.ZodType<Condition | FilterGroup> = z.lazy(() => z.union([conditionSchema, groupSchema]));
export const groupSchema: z.ZodType<FilterGroup> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(nodeSchema).min(1).max(MAX_GROUP_ITEMS) }),
    z.strictObject({ any: z.array(nodeSchema).min(1).max(MAX_GROUP_ITEMS) }),
  ]),
);

export const traderDefinitionSchema = z.object({
  symbols: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9]{2,20}$/, 'must be a Binance symbol such as BTCUSDT')
        .transform((s) => s.toUpperCase()),
    )
    .min(1)
    .max(MAX_SYMBOLS),
  interval: z.enum(klineIntervals),
  filter: groupSchema,
  /** `change`: fire when the filter turns true; `every`: on every closed candle where it is true. */
  fireOn: z.enum(['change', 'every']).default('change'),
});
export type TraderDefinition = z.infer<typeof traderDefinitionSchema>;

export const isGroup = (n: Condition | FilterGroup): n is FilterGroup => 'all' in n || 'any' in n;

/** Every operand a filter mentions (numbers excluded). */
export function operandsOf(group: FilterGroup): Operand[] {
  const out: Operand[] = [];
  const nodes = 'all' in group ? group.all : group.any;
  for (const n of nodes) {
    if (isGroup(n)) out.push(...operandsOf(n));
    else {
      out.push(n.left);
      if (typeof n.right !== 'number') out.push(n.right);
    }
  }
  return out;
}

/** Conditions in a filter (nesting is bounded by MAX_FILTER_DEPTH, so recursion is safe here). */
export function conditionCount(group: FilterGroup): number {
  let n = 0;
  for (const node of 'all' in group ? group.all : group.any) n += isGroup(node) ? conditionCount(node) : 1;
  return n;
}

/**
 * The first bound `value` exceeds, or null. One iterative walk (no recursion, so no stack to
 * overflow), stopping as soon as a bound is passed: the cost is at most MAX_DEFINITION_BYTES steps
 * whatever it is handed (a cyclic object too). Bytes are those of `JSON.stringify(value)`.
 */
export function definitionBoundsError(value: unknown): string | null {
  const stack: { v: unknown; json: number; groups: number }[] = [{ v: value, json: 0, groups: 0 }];
  let bytes = 0;
  let nodes = 0;
  const over = () => `definition: larger than ${MAX_DEFINITION_BYTES} bytes of JSON`;
  while (stack.length > 0) {
    const { v, json, groups } = stack.pop()!;
    if (v === undefined) continue; // left out by JSON.stringify
    if (v === null || typeof v === 'boolean' || typeof v === 'number') bytes += JSON.stringify(v).length;
    else if (typeof v === 'string') {
      if (v.length > MAX_DEFINITION_BYTES) return over();
      bytes += Buffer.byteLength(JSON.stringify(v));
    } else if (typeof v === 'object') {
      if (json + 1 > MAX_JSON_DEPTH) return `definition: nested deeper than ${MAX_JSON_DEPTH} levels of JSON`;
      const group = 'all' in v || 'any' in v;
      if (group || 'left' in v) nodes++;
      if (nodes > MAX_FILTER_NODES) return `filter: more than ${MAX_FILTER_NODES} conditions and groups`;
      const depth = groups + (group ? 1 : 0);
      if (depth > MAX_FILTER_DEPTH) return `filter: more than ${MAX_FILTER_DEPTH} nested groups`;
      const items: unknown[] = Array.isArray(v) ? v : Object.values(v);
      bytes += 2 + Math.max(0, items.length - 1); // brackets and commas
      if (bytes > MAX_DEFINITION_BYTES) return over();
      if (!Array.isArray(v))
        for (const k of Object.keys(v)) {
          bytes += Buffer.byteLength(JSON.stringify(k)) + 1; // "key":
          if (bytes > MAX_DEFINITION_BYTES) return over();
        }
      for (const item of items) stack.push({ v: item, json: json + 1, groups: depth });
    } else return `definition: not JSON (a ${typeof v})`;
    if (bytes > MAX_DEFINITION_BYTES) return over();
  }
  return null;
}

export type DefinitionResult = { success: true; data: TraderDefinition } | { success: false; error: string };

/** Bounds first, then the schema; never throws. The error names where the problem is. */
export function parseTraderDefinition(value: unknown): DefinitionResult {
  try {
    const bounds = definitionBoundsError(value);
    if (bounds) return { success: false, error: bounds };
    const parsed = traderDefinitionSchema.safeParse(value);
    if (parsed.success) return { success: true, data: parsed.data };
    const issue = parsed.error.issues[0];
    return { success: false, error: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
  } catch (err) {
    return { success: false, error: `definition: ${err instanceof Error ? err.message : String(err)}` };
  }
}
