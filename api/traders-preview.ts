import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import type { z } from 'zod';
import type { Candle } from '../machine-runtime/candles';
import { TraderEngine } from '../machine-runtime/engine';
import { createMetrics } from '../machine-runtime/metrics';
import { InvalidSymbolError, KlinesClient } from '../machine-runtime/rest';
import type { TraderDefinition } from '../machine-runtime/trader-schema';
import { HttpProblem } from './problem';
import {
  createTraderSchema,
  parseWithDefinition,
  previewRequestSchema,
  type previewResponseSchema,
  type validationResponseSchema,
} from './traders-schema';

type Preview = z.infer<typeof previewResponseSchema>;
const PAGE = 1000;

/**
 * What `definition` would have fired over `candles` (closed, oldest first, one symbol and interval),
 * computed by the runtime's own engine fed candle by candle, exactly as a machine evaluates a stream.
 * Indicators warm up over the first candles as they do on a machine that just started.
 */
export function previewFirings(definition: TraderDefinition, candles: readonly Candle[]): Preview['firings'] {
  const first = candles[0];
  if (!first) return [];
  const firings: Preview['firings'] = [];
  const engine = new TraderEngine({
    candleCapacity: 500,
    onFire: (f) =>
      firings.push({
        openTime: f.candle.openTime,
        closeTime: f.candle.closeTime,
        close: f.candle.close,
        values: f.values,
      }),
  });
  const { invalid } = engine.setTraders([
    {
      id: 'preview',
      userId: 'preview',
      name: 'preview',
      definition: { ...definition, symbols: [first.symbol], interval: first.interval },
      enabled: true,
      updatedAt: new Date(0),
    },
  ]);
  if (invalid[0]) throw new Error(`preview: the engine refused the definition: ${invalid[0].error}`);
  for (const c of candles) engine.onClosed([c], true);
  return firings;
}

/** The last `count` closed candles (Binance's newest row is the one still forming: left out). */
export async function lastClosedCandles(
  klines: Pick<KlinesClient, 'page'>,
  symbol: string,
  interval: string,
  count: number,
): Promise<Candle[]> {
  let rows = await klines.page({ symbol, interval, limit: Math.min(count + 1, PAGE) });
  rows = rows.slice(0, -1);
  let earliest = rows[0];
  while (rows.length < count && earliest) {
    const older = await klines.page({ symbol, interval, endTime: earliest.openTime - 1, limit: count - rows.length });
    if (older.length === 0) break;
    rows = [...older, ...rows];
    earliest = older[0];
  }
  return rows.slice(-count);
}

/**
 * `POST /v1/traders/preview`: how often a definition would have fired recently, from Binance's klines.
 * `POST /v1/traders/validate`: what POST /v1/traders would say of a body, without saving it (the page's
 * editor asks while the user types: `validateRoute` has its own budget, so typing never spends Start's).
 */
export function registerPreviewRoute(
  app: FastifyInstance,
  deps: {
    userRoute: RouteShorthandOptions;
    validateRoute: RouteShorthandOptions;
    binanceRestUrl: string;
    klines?: Pick<KlinesClient, 'page'>;
  },
) {
  app.post(
    '/v1/traders/validate',
    deps.validateRoute,
    async (req): Promise<z.infer<typeof validationResponseSchema>> => {
      const body = parseWithDefinition(createTraderSchema, req.body ?? {});
      return body.success ? { valid: true, errors: [] } : { valid: false, errors: body.errors };
    },
  );

  const klines =
    deps.klines ??
    new KlinesClient({ restUrl: deps.binanceRestUrl, log: app.log, metrics: createMetrics(), timeoutMs: 10_000 });

  app.post('/v1/traders/preview', deps.userRoute, async (req): Promise<Preview> => {
    const body = parseWithDefinition(previewRequestSchema, req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'not a valid preview request', { errors: body.errors });
    const { definition, candles: count } = body.data;
    const symbol = body.data.symbol ?? definition.symbols[0]!;
    const interval = body.data.interval ?? definition.interval;
    let candles: Candle[];
    try {
      candles = await lastClosedCandles(klines, symbol, interval, count);
    } catch (err) {
      if (err instanceof InvalidSymbolError)
        throw new HttpProblem(422, `Binance does not know the symbol ${symbol}: pick one it lists, such as BTCUSDT`, {
          errors: [{ path: body.data.symbol ? 'symbol' : 'definition.symbols.0', message: 'unknown to Binance' }],
        });
      req.log.warn({ err, symbol, interval }, 'preview: klines request failed');
      throw new HttpProblem(502, 'Binance did not answer the candles request; try again in a moment');
    }
    const firings = previewFirings(definition, candles);
    return {
      symbol,
      interval,
      candles: candles.length,
      firings,
      from: candles[0] ? new Date(candles[0].openTime).toISOString() : null,
      to: candles.at(-1) ? new Date(candles.at(-1)!.closeTime).toISOString() : null,
    };
  });
}
