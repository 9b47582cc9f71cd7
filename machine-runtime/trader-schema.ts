import { z } from 'zod';
import { klineIntervals } from './candles';

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
    z.strictObject({ all: z.array(nodeSchema).min(1).max(50) }),
    z.strictObject({ any: z.array(nodeSchema).min(1).max(50) }),
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
    .max(200),
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
