import { toMs, type Candle } from './candles';
import { backoffMs, sleep, type Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';

const maxLimit = 1000;

/**
 * Binance answered HTTP 400 with code -1121 ("Invalid symbol."): the symbol does not exist (or no
 * longer does). Asking again cannot help and spends request weight (repeated errors risk an IP
 * ban), so it is never retried; the feed hands it to the runtime, which marks the traders invalid.
 */
export class InvalidSymbolError extends Error {
  constructor(
    readonly symbol: string,
    readonly binanceMessage: string,
  ) {
    super(`Binance does not know ${symbol}: HTTP 400, code -1121 ${JSON.stringify(binanceMessage)}`);
    this.name = 'InvalidSymbolError';
  }
}

export interface KlinesQuery {
  symbol: string;
  interval: string;
  startTime?: number;
  endTime?: number;
  limit?: number;
}

/** `GET /api/v3/klines`, with Binance's rate-limit answers (429/418 + Retry-After) honoured. */
export class KlinesClient {
  constructor(
    private readonly opts: {
      restUrl: string;
      log: Log;
      metrics: MachineRuntimeMetrics;
      timeoutMs?: number;
      retryBaseMs?: number;
      retryMaxMs?: number;
      isStopped?: () => boolean;
      /** Requests in flight at once; the rest wait their turn (default 4). */
      maxConcurrent?: number;
    },
  ) {}

  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * One page; throws on any failure. At most `maxConcurrent` at once: warming up 900 streams
   * together would otherwise hold 900 responses in memory at the same moment (and spend Binance's
   * request weight in one go).
   */
  async page(q: KlinesQuery): Promise<Candle[]> {
    if (this.inFlight >= (this.opts.maxConcurrent ?? 4)) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    try {
      return await this.fetchPage(q);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  private async fetchPage(q: KlinesQuery): Promise<Candle[]> {
    const url = new URL('/api/v3/klines', this.opts.restUrl);
    url.searchParams.set('symbol', q.symbol);
    url.searchParams.set('interval', q.interval);
    // Binance takes integer milliseconds only; a clock may hand us fractions.
    if (q.startTime !== undefined) url.searchParams.set('startTime', String(Math.ceil(q.startTime)));
    if (q.endTime !== undefined) url.searchParams.set('endTime', String(Math.floor(q.endTime)));
    url.searchParams.set('limit', String(Math.min(q.limit ?? maxLimit, maxLimit)));
    const res = await fetch(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
    if (!res.ok) {
      const retryAfter = Number(res.headers.get('retry-after'));
      const body = await res.text().catch(() => '');
      const binance = binanceError(body);
      if (res.status === 400 && binance?.code === -1121) throw new InvalidSymbolError(q.symbol, binance.msg);
      const detail = body.slice(0, 200);
      const err = new Error(`klines ${res.status} for ${q.symbol} ${q.interval}: ${detail}`) as Error & {
        retryAfterMs?: number;
      };
      if (Number.isFinite(retryAfter) && retryAfter > 0) err.retryAfterMs = retryAfter * 1000;
      throw err;
    }
    const rows = (await res.json()) as unknown;
    if (!Array.isArray(rows)) throw new Error('klines: response is not an array');
    return rows.map((r) => parseRow(r, q.symbol, q.interval));
  }

  /**
   * Retries a page until it succeeds or the feed stops (a missed candle is worse than a late one);
   * an unknown symbol (InvalidSymbolError) is thrown at once.
   */
  async pageWithRetry(q: KlinesQuery): Promise<Candle[] | null> {
    for (let attempt = 0; ; attempt++) {
      if (this.opts.isStopped?.()) return null;
      try {
        const rows = await this.page(q);
        this.opts.metrics.restRequests.inc({ outcome: 'ok' });
        return rows;
      } catch (err) {
        this.opts.metrics.restRequests.inc({ outcome: 'error' });
        if (err instanceof InvalidSymbolError) throw err;
        const wait = Math.max(
          (err as { retryAfterMs?: number }).retryAfterMs ?? 0,
          backoffMs(attempt, this.opts.retryBaseMs ?? 500, this.opts.retryMaxMs ?? 30_000),
        );
        this.opts.log.warn({ err, symbol: q.symbol, interval: q.interval, attempt, wait }, 'klines request failed');
        await sleep(wait);
      }
    }
  }

  /** Closed candles with `after < openTime` and `closeTime < before`, paging forward. */
  async closedRange(symbol: string, interval: string, after: number, before: number): Promise<Candle[] | null> {
    const out: Candle[] = [];
    let start = after + 1;
    for (;;) {
      const rows = await this.pageWithRetry({ symbol, interval, startTime: start, endTime: before, limit: maxLimit });
      if (rows === null) return null;
      for (const c of rows) if (c.openTime > after && c.closeTime < before) out.push(c);
      const last = rows[rows.length - 1];
      if (rows.length < maxLimit || !last || last.closeTime >= before) return out;
      start = last.openTime + 1;
    }
  }
}

/** Binance's error body, `{"code":-1121,"msg":"Invalid symbol."}`, if that is what `body` is. */
function binanceError(body: string): { code: number; msg: string } | undefined {
  try {
    const e = JSON.parse(body) as { code?: unknown; msg?: unknown };
    return typeof e.code === 'number' ? { code: e.code, msg: typeof e.msg === 'string' ? e.msg : '' } : undefined;
  } catch {
    return undefined;
  }
}

function parseRow(r: unknown, symbol: string, interval: string): Candle {
  if (!Array.isArray(r) || r.length < 7) throw new Error('klines: malformed row');
  const c: Candle = {
    symbol,
    interval,
    openTime: toMs(Number(r[0])),
    open: Number(r[1]),
    high: Number(r[2]),
    low: Number(r[3]),
    close: Number(r[4]),
    volume: Number(r[5]),
    closeTime: toMs(Number(r[6])),
  };
  if (!Object.values(c).every((v) => typeof v === 'string' || Number.isFinite(v)))
    throw new Error('klines: bad number');
  return c;
}
