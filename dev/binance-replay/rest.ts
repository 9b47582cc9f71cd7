import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { type Candle, type DataIndex, isInterval } from './candles';
import { klineRow } from './kline';
import type { Timelines } from './laps';
import { partialAt } from './partial';
import type { ReplayFaults } from './server';

/**
 * The HTTP side: Binance's REST (`/api/v3/klines`, `/api/v3/ping`, `/api/v3/time`, with `x-mbx-used-weight-1m`)
 * and the replay's admin routes (`/admin/faults`, `/admin/stats`, `/admin/drop-all`).
 */

class BinanceError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    msg: string,
  ) {
    super(msg);
  }
}

const intParam = (q: URLSearchParams, name: string): number | undefined => {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?[0-9]{1,20}$/.test(v)) {
    throw new BinanceError(
      400,
      -1100,
      `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`,
    );
  }
  return Number(v);
};

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 65_536) reject(new BinanceError(413, -1, 'Body too large.'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

export interface RestOptions {
  index: DataIndex;
  /** The series as the streams play them (laps.ts): REST answers the same candles, past laps included. */
  timelines: Timelines;
  /** The replay clock, brought current (REST answers only up to it). */
  clock: () => number;
  faults: () => ReplayFaults;
  faultsSchema: z.ZodType<ReplayFaults>;
  setFaults: (f: ReplayFaults) => void;
  stats: () => { connections: number; messagesSent: number; closedCandlesSent: number };
  dropAll: () => void;
}

/** The request handler of the HTTP server. */
export function createRestHandler(opts: RestOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { index, timelines, clock, faults, faultsSchema, setFaults, stats, dropAll } = opts;
  let weight = { minute: 0, used: 0 };

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, {
      'content-type': 'application/json;charset=UTF-8',
      'x-mbx-used-weight-1m': String(weight.used),
    });
    res.end(JSON.stringify(body));
  };

  const addWeight = (w: number): void => {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== weight.minute) weight = { minute, used: 0 };
    weight.used += w;
  };

  const klines = (q: URLSearchParams): unknown[][] => {
    const symbol = q.get('symbol');
    const interval = q.get('interval');
    const mandatory = (p: string) =>
      new BinanceError(400, -1102, `Mandatory parameter '${p}' was not sent, was empty/null, or malformed.`);
    if (!symbol) throw mandatory('symbol');
    if (!/^[A-Z0-9-_.]{1,20}$/.test(symbol)) {
      throw new BinanceError(
        400,
        -1100,
        "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
      );
    }
    if (!interval) throw mandatory('interval');
    if (!isInterval(interval)) throw new BinanceError(400, -1120, 'Invalid interval.');
    if (!index.hasSymbol(symbol)) throw new BinanceError(400, -1121, 'Invalid symbol.');
    const startTime = intParam(q, 'startTime');
    const endTime = intParam(q, 'endTime');
    const rawLimit = intParam(q, 'limit');
    if (rawLimit !== undefined && rawLimit < 1) {
      throw new BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.");
    }
    const limit = Math.min(rawLimit ?? 500, 1000);
    if (startTime !== undefined && endTime !== undefined && startTime > endTime) {
      throw new BinanceError(400, -1023, 'Start time is greater than end time.');
    }
    const now = clock();
    const series = timelines.series(symbol, interval);
    // Virtual indices (laps.ts): contiguous across the seams of loop mode. The future is unknown: only candles
    // opened by the replay clock exist.
    const from = startTime === undefined ? 0 : series.lower(startTime);
    const to = series.lower(Math.min(endTime ?? Infinity, now) + 1); // exclusive
    const [a, b] = startTime !== undefined ? [from, Math.min(to, from + limit)] : [Math.max(from, to - limit), to];
    const rows: unknown[][] = [];
    for (let i = a; i < b; i++) {
      const c = series.at(i) as Candle;
      const shown = now > c.closeTime ? c : partialAt(c, (now - c.openTime) / (c.closeTime + 1 - c.openTime));
      rows.push(klineRow(c, shown));
    }
    return rows;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://replay');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /api/v3/ping':
          addWeight(1);
          return json(res, 200, {});
        case 'GET /api/v3/time':
          addWeight(1);
          return json(res, 200, { serverTime: clock() });
        case 'GET /api/v3/klines':
          addWeight(2);
          return json(res, 200, klines(url.searchParams));
        case 'GET /admin/faults':
          return json(res, 200, faults());
        case 'PUT /admin/faults': {
          const parsed = faultsSchema.safeParse(JSON.parse((await readBody(req)) || '{}'));
          if (!parsed.success) return json(res, 400, { error: 'invalid faults', issues: parsed.error.issues });
          setFaults(parsed.data);
          return json(res, 200, faults());
        }
        case 'GET /admin/stats':
          return json(res, 200, { ...stats(), clock: clock() });
        case 'POST /admin/drop-all':
          dropAll();
          return json(res, 200, { dropped: true });
        default:
          return json(res, 404, { code: -1, msg: 'Not found.' });
      }
    } catch (err) {
      if (err instanceof BinanceError) return json(res, err.status, { code: err.code, msg: err.message });
      if (err instanceof SyntaxError) return json(res, 400, { error: 'body is not JSON' });
      return json(res, 500, { code: -1000, msg: 'An unknown error occurred while processing the request.' });
    }
  };

  return handle;
}
