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
 * updates of a candle still forming; this reads the fields in place, in one pass without closures,
 * slicing only the fields it keeps. Numbers are converted exactly as the general path converts them
 * (`Number(...)`; a time of plain digits is summed in place, which is the same integer). Anything
 * that deviates by a character returns undefined and takes the general path (JSON.parse), which also
 * decides what is malformed.
 */
export function scanKlineFrame(text: string): (Candle & { closed: boolean; eventTime: number }) | undefined {
  // A backslash can only be inside a string (anywhere else the layout breaks): an escape, not ours.
  if (text.indexOf('\\') >= 0 || !text.startsWith('{"stream":"')) return undefined;
  let p = text.indexOf('"', 11); // the stream name
  if (p < 0 || !text.startsWith(',"data":{"e":"kline","E":', ++p)) return undefined;
  let end = numberEnd(text, (p += 25));
  const eventTime = integer(text, p, end);
  if (end === p || !text.startsWith(',"s":"', end)) return undefined;
  p = text.indexOf('"', end + 6); // the symbol again
  if (p < 0 || !text.startsWith(',"k":{"t":', ++p)) return undefined;
  end = numberEnd(text, (p += 10));
  const openTime = integer(text, p, end);
  if (end === p || !text.startsWith(',"T":', end)) return undefined;
  end = numberEnd(text, (p = end + 5));
  const closeTime = integer(text, p, end);
  if (end === p || !text.startsWith(',"s":"', end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const symbol = text.slice(p, end);
  if (!text.startsWith(',"i":"', ++end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const interval = text.slice(p, end);
  if (!text.startsWith(',"f":', ++end)) return undefined;
  end = numberEnd(text, (p = end + 5));
  if (end === p || !text.startsWith(',"L":', end)) return undefined;
  end = numberEnd(text, (p = end + 5));
  if (end === p || !text.startsWith(',"o":"', end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const open = Number(text.slice(p, end));
  if (!text.startsWith(',"c":"', ++end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const close = Number(text.slice(p, end));
  if (!text.startsWith(',"h":"', ++end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const high = Number(text.slice(p, end));
  if (!text.startsWith(',"l":"', ++end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const low = Number(text.slice(p, end));
  if (!text.startsWith(',"v":"', ++end)) return undefined;
  end = text.indexOf('"', (p = end + 6));
  if (end < 0) return undefined;
  const volume = Number(text.slice(p, end));
  if (!text.startsWith(',"n":', ++end)) return undefined;
  end = numberEnd(text, (p = end + 5));
  if (end === p || !text.startsWith(',"x":', end)) return undefined;
  p = end + 5;
  const closed = text.startsWith('true', p);
  if (closed) p += 4;
  else if (text.startsWith('false', p)) p += 5;
  else return undefined;
  for (const key of unkept) {
    if (!text.startsWith(key, p)) return undefined;
    p = text.indexOf('"', p + 6);
    if (p++ < 0) return undefined;
  }
  if (p !== text.length - 3 || !text.endsWith('}}}')) return undefined;
  return { symbol, interval, openTime, closeTime, open, high, low, close, volume, closed, eventTime };
}

/** The kline's last fields, read past and not kept. */
const unkept = [',"q":"', ',"V":"', ',"Q":"', ',"B":"'];

/** Where a bare JSON number starting at `p` ends (digits, sign, point, exponent). */
function numberEnd(text: string, p: number): number {
  for (
    let ch = text.charCodeAt(p);
    (ch >= 48 && ch <= 57) || ch === 45 || ch === 43 || ch === 46 || ch === 101 || ch === 69;
  ) {
    ch = text.charCodeAt(++p);
  }
  return p;
}

/** `Number(text.slice(from, to))`: summed in place when it is plain digits (exact below 2^53). */
function integer(text: string, from: number, to: number): number {
  if (to - from > 15 || to === from) return Number(text.slice(from, to));
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number(text.slice(from, to));
    n = n * 10 + d;
  }
  return n;
}
