import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import { klineIntervals, type Candle } from '../machine-runtime/candles';
import { createMetrics } from '../machine-runtime/metrics';
import { InvalidSymbolError, KlinesClient } from '../machine-runtime/rest';
import { HttpProblem, zodErrors } from './problem';
import { lastClosedCandles } from './traders-preview';

/** How long one answer is reused: every tab of every user charting BTCUSDT 1m costs Binance one call. */
const CACHE_MS = 5_000;
const CACHE_ENTRIES = 200;

export const klinesQuerySchema = z.strictObject({
  symbol: z
    .string()
    .regex(/^[A-Za-z0-9]{2,20}$/, 'must be a Binance symbol such as BTCUSDT')
    .transform((s) => s.toUpperCase()),
  interval: z.enum(klineIntervals),
  limit: z.coerce.number().int().min(1).max(1000).default(300),
});

export const klinesResponseSchema = z.object({
  symbol: z.string(),
  interval: z.string(),
  candles: z
    .array(
      z.object({
        openTime: z.number().int(),
        closeTime: z.number().int(),
        open: z.number(),
        high: z.number(),
        low: z.number(),
        close: z.number(),
        volume: z.number(),
      }),
    )
    .describe('closed candles, oldest first (the one still forming is left out)'),
});
type Klines = z.infer<typeof klinesResponseSchema>;

/**
 * `GET /v1/market/klines`: recent closed candles of one stream, the backfill of the page's chart
 * before the machine's stream frames take over. From BINANCE_REST_URL (dev/binance-replay locally),
 * cached a few seconds per (symbol, interval, limit); signed-in users only, so it is no open proxy.
 */
export function registerMarketRoutes(
  app: FastifyInstance,
  deps: { route: RouteShorthandOptions; binanceRestUrl: string; klines?: Pick<KlinesClient, 'page'> },
) {
  const klines =
    deps.klines ??
    new KlinesClient({ restUrl: deps.binanceRestUrl, log: app.log, metrics: createMetrics(), timeoutMs: 10_000 });
  const cache = new Map<string, { at: number; answer: Promise<Klines> }>();

  const load = (symbol: string, interval: string, limit: number): Promise<Klines> => {
    const key = `${symbol}|${interval}|${limit}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.answer;
    const answer = lastClosedCandles(klines, symbol, interval, limit).then((candles: Candle[]) => ({
      symbol,
      interval,
      candles: candles.map(({ openTime, closeTime, open, high, low, close, volume }) => ({
        openTime,
        closeTime,
        open,
        high,
        low,
        close,
        volume,
      })),
    }));
    cache.delete(key); // re-inserted last: the Map's order is then least recently filled first
    cache.set(key, { at: Date.now(), answer });
    if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    // A failure is not reused.
    answer.catch(() => cache.get(key)?.answer === answer && cache.delete(key));
    return answer;
  };

  app.get('/v1/market/klines', deps.route, async (req) => {
    const q = klinesQuerySchema.safeParse(req.query ?? {});
    if (!q.success) throw new HttpProblem(400, 'not a valid klines query', { errors: zodErrors(q.error) });
    const { symbol, interval, limit } = q.data;
    try {
      return await load(symbol, interval, limit);
    } catch (err) {
      if (err instanceof InvalidSymbolError)
        throw new HttpProblem(422, `Binance does not know the symbol ${symbol}: pick one it lists, such as BTCUSDT`, {
          errors: [{ path: 'symbol', message: 'unknown to Binance' }],
        });
      req.log.warn({ err, symbol, interval }, 'market: klines request failed');
      throw new HttpProblem(502, 'Binance did not answer the candles request; try again in a moment');
    }
  });
}
