import * as z from 'zod/mini';

// The page's market and signal reads, re-declared from api/signals.ts, api/market.ts and
// api/traders-preview.ts (the client never imports server code; client/api.test.ts checks they agree).

const num = z.nullable(z.number());

/** A stored signal: `GET /v1/signals`. */
export const storedSignalSchema = z.object({
  id: z.string(),
  traderId: z.string(),
  traderName: z.nullable(z.string()),
  symbol: z.string(),
  interval: z.string(),
  candleOpenAt: z.string(),
  firedAt: z.string(),
  close: num,
  values: z.record(z.string(), num),
  aiNote: z.nullable(z.string()),
});
export type StoredSignal = z.infer<typeof storedSignalSchema>;
export const signalListSchema = z.object({ signals: z.array(storedSignalSchema), next: z.nullable(z.string()) });
export type SignalList = z.infer<typeof signalListSchema>;
export interface SignalQuery {
  limit?: number;
  /** The previous page's `next`. */
  before?: string;
  symbol?: string;
  interval?: string;
}

/** `GET /v1/market/klines`: closed candles, oldest first. */
export const klineSchema = z.object({
  openTime: z.number(),
  closeTime: z.number(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
});
export type Kline = z.infer<typeof klineSchema>;
export const klinesSchema = z.object({ symbol: z.string(), interval: z.string(), candles: z.array(klineSchema) });
export type Klines = z.infer<typeof klinesSchema>;

/** `POST /v1/traders/preview`. */
export interface PreviewRequest {
  definition: unknown;
  symbol?: string;
  interval?: string;
  candles?: number;
}
export const previewSchema = z.object({
  symbol: z.string(),
  interval: z.string(),
  candles: z.number(),
  firings: z.array(
    z.object({ openTime: z.number(), closeTime: z.number(), close: z.number(), values: z.record(z.string(), num) }),
  ),
  from: z.nullable(z.string()),
  to: z.nullable(z.string()),
});
export type Preview = z.infer<typeof previewSchema>;

/** `POST /v1/traders/validate`: what a create would say, without saving. */
export const validationSchema = z.object({
  valid: z.boolean(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })),
});
export type Validation = z.infer<typeof validationSchema>;
