import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import { klineIntervals } from '../machine-runtime/candles';
import type { TradeSignalRow, UserTraderStore } from '../store/types';
import type { AuthenticatedUser } from './auth';
import { HttpProblem, zodErrors } from './problem';

/** A page cursor: the last row's fired_at and id (`<ISO 8601>~<uuid>`), readable and opaque enough. */
const CURSOR = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)~([0-9a-f-]{36})$/;
const cursorOf = (s: Signal) => `${s.firedAt}~${s.id}`;
const parseCursor = (c: string) => {
  const [, at, id] = CURSOR.exec(c)!;
  return { firedAt: new Date(at!), id: id! };
};

export const signalQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z
    .string()
    .regex(CURSOR, 'must be the `next` of a previous page')
    .optional()
    .describe('an earlier page: the previous page’s `next`'),
  symbol: z
    .string()
    .regex(/^[A-Za-z0-9]{2,20}$/, 'must be a Binance symbol such as BTCUSDT')
    .transform((s) => s.toUpperCase())
    .optional(),
  interval: z.enum(klineIntervals).optional(),
});

const num = z.number().nullable();
export const signalSchema = z.object({
  id: z.string(),
  traderId: z.uuid(),
  traderName: z.string().nullable(),
  symbol: z.string(),
  interval: z.string(),
  candleOpenAt: z.string().describe('open time of the candle that fired (ISO 8601)'),
  firedAt: z.string(),
  close: num.describe('the close of that candle'),
  values: z.record(z.string(), num).describe('every value the filter read when it fired'),
  aiNote: z.string().nullable().describe('the AI note, when the deployment makes them'),
});
export const signalListSchema = z.object({
  signals: z.array(signalSchema),
  next: z.string().nullable().describe('pass as `before` for the next (older) page; null on the last one'),
});
type Signal = z.infer<typeof signalSchema>;

const numberOrNull = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A stored signal as the page shows it: the payload's known members, typed; anything else stays out. */
export function toSignalResponse(s: TradeSignalRow): Signal {
  const p = s.payload;
  const values: Record<string, number | null> = {};
  if (p.values && typeof p.values === 'object')
    for (const [k, v] of Object.entries(p.values as Record<string, unknown>)) values[k] = numberOrNull(v);
  return {
    id: s.id,
    traderId: s.traderId,
    traderName: typeof p.traderName === 'string' ? p.traderName : null,
    symbol: s.symbol,
    interval: s.interval,
    candleOpenAt: s.candleOpenAt.toISOString(),
    firedAt: s.firedAt.toISOString(),
    close: numberOrNull(p.close),
    values,
    aiNote: typeof p.aiNote === 'string' ? p.aiNote : null,
  };
}

/** `GET /v1/signals`: the caller's signals, newest first, paged; RLS decides what exists. */
export function registerSignalRoutes(
  app: FastifyInstance,
  deps: {
    userRoute: RouteShorthandOptions;
    userOf: (req: FastifyRequest) => AuthenticatedUser;
    userStore?: (user: AuthenticatedUser, req: FastifyRequest) => UserTraderStore;
  },
) {
  app.get('/v1/signals', deps.userRoute, async (req) => {
    if (!deps.userStore)
      throw new HttpProblem(501, 'signals are not available on this server: it has no user store configured');
    const q = signalQuerySchema.safeParse(req.query ?? {});
    if (!q.success) throw new HttpProblem(400, 'not a valid signals query', { errors: zodErrors(q.error) });
    const { limit, before, symbol, interval } = q.data;
    const rows = await deps
      .userStore(deps.userOf(req), req)
      .listTradeSignals({ limit, before: before ? parseCursor(before) : undefined, symbol, interval });
    const signals = rows.map(toSignalResponse);
    const last = signals.at(-1);
    return { signals, next: rows.length === limit && last ? cursorOf(last) : null };
  });
}
