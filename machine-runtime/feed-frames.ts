import type { Candle } from './candles';

/**
 * What a frame that is not laid out exactly as Binance sends a kline turned out to be, once
 * JSON.parse has read it: this path also decides what is malformed (and why, for the debug log).
 */
export type ParsedFrame =
  | { kind: 'malformed'; reason: string }
  /** An application-level `{"ping":x}` (some gateways): answered with `{"pong":x}`. */
  | { kind: 'ping'; ping: unknown }
  /** The answer to one of our SUBSCRIBE / UNSUBSCRIBE frames. */
  | { kind: 'reply'; id: unknown; error: unknown }
  | { kind: 'serverShutdown' }
  | { kind: 'kline'; candle: Candle; closed: boolean; eventTime: number | undefined }
  /** Some other event: ignored. */
  | { kind: 'other' };

const malformed = (reason: string): ParsedFrame => ({ kind: 'malformed', reason });

/** The general path for a text frame `scanKlineFrame` did not take: JSON.parse, then a look at its shape. */
export function parseFrame(text: string): ParsedFrame {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return malformed('json');
  }
  if (typeof msg !== 'object' || msg === null) return malformed('not an object');
  const m = msg as Record<string, unknown>;
  if ('ping' in m) return { kind: 'ping', ping: m.ping };
  if ('id' in m && ('result' in m || 'error' in m)) return { kind: 'reply', id: m.id, error: m.error };
  const data = m.data as Record<string, unknown> | undefined;
  if (typeof data !== 'object' || data === null) return malformed('no data');
  if (data.e === 'serverShutdown') return { kind: 'serverShutdown' };
  if (data.e !== 'kline') return { kind: 'other' };
  const k = data.k as Record<string, unknown> | undefined;
  if (typeof k !== 'object' || k === null) return malformed('kline without k');
  const candle: Candle = {
    symbol: String(k.s ?? data.s ?? ''),
    interval: String(k.i ?? ''),
    openTime: Number(k.t),
    closeTime: Number(k.T),
    open: Number(k.o),
    high: Number(k.h),
    low: Number(k.l),
    close: Number(k.c),
    volume: Number(k.v),
  };
  if (typeof k.x !== 'boolean') return malformed('kline fields');
  return { kind: 'kline', candle, closed: k.x, eventTime: typeof data.E === 'number' ? data.E : undefined };
}

/** A candle of its own (a scanned kline carries extra fields that must not travel on). */
export function toCandle(c: Candle): Candle {
  return {
    symbol: c.symbol,
    interval: c.interval,
    openTime: c.openTime,
    closeTime: c.closeTime,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
  };
}

/**
 * Reads a combined-stream kline frame without JSON.parse when it is laid out exactly as Binance sends
 * it (machine-runtime/README.md, "Feed"): the keys in Binance's order, no whitespace, no escapes.
 * JSON.parse would build an object tree with a string per field for every frame, most of them
 * updates of a candle still forming; this reads the fields in place. Numbers are converted exactly as
 * the general path converts them (`Number(...)`). Anything that deviates by a character returns
 * undefined and takes the general path (JSON.parse), which also decides what is malformed.
 */
export function scanKlineFrame(text: string): (Candle & { closed: boolean; eventTime: number }) | undefined {
  let p = 0;
  let ok = true;
  const lit = (s: string) => {
    if (ok && text.startsWith(s, p)) p += s.length;
    else ok = false;
  };
  // After an opening quote: the string up to the closing one (no escapes: a key or number never has one).
  const str = (): string => {
    if (!ok) return '';
    const end = text.indexOf('"', p);
    const v = end < 0 ? '\\' : text.slice(p, end);
    if (v.includes('\\')) {
      ok = false;
      return '';
    }
    p = end + 1;
    return v;
  };
  // A bare JSON number (digits, sign, point, exponent).
  const num = (): number => {
    if (!ok) return NaN;
    const start = p;
    for (
      let ch = text.charCodeAt(p);
      (ch >= 48 && ch <= 57) || ch === 45 || ch === 43 || ch === 46 || ch === 101 || ch === 69;
    ) {
      ch = text.charCodeAt(++p);
    }
    if (p === start) ok = false;
    return Number(text.slice(start, p));
  };
  lit('{"stream":"');
  str();
  lit(',"data":{"e":"kline","E":');
  const eventTime = num();
  lit(',"s":"');
  str();
  lit(',"k":{"t":');
  const openTime = num();
  lit(',"T":');
  const closeTime = num();
  lit(',"s":"');
  const symbol = str();
  lit(',"i":"');
  const interval = str();
  lit(',"f":');
  num();
  lit(',"L":');
  num();
  lit(',"o":"');
  const open = Number(str());
  lit(',"c":"');
  const close = Number(str());
  lit(',"h":"');
  const high = Number(str());
  lit(',"l":"');
  const low = Number(str());
  lit(',"v":"');
  const volume = Number(str());
  lit(',"n":');
  num();
  lit(',"x":');
  const closed = ok && text.startsWith('true', p);
  lit(closed ? 'true' : 'false');
  lit(',"q":"');
  str();
  lit(',"V":"');
  str();
  lit(',"Q":"');
  str();
  lit(',"B":"');
  str();
  lit('}}}');
  if (!ok || p !== text.length) return undefined;
  return { symbol, interval, openTime, closeTime, open, high, low, close, volume, closed, eventTime };
}
