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

/** A kline read by `scanKline`: the candle's fields, whether it closed, and the event time. */
export interface ScannedKline extends Candle {
  closed: boolean;
  eventTime: number;
}

/** A scratch kline for `scanKline` to fill (one per feed: frames are read one at a time). */
export const scannedKline = (): ScannedKline => ({
  symbol: '',
  interval: '',
  openTime: 0,
  closeTime: 0,
  open: 0,
  high: 0,
  low: 0,
  close: 0,
  volume: 0,
  closed: false,
  eventTime: 0,
});

/** `scanKline` on a string (tests, callers holding text): the same reading, of its UTF-8 bytes. */
export function scanKlineFrame(text: string): ScannedKline | undefined {
  const out = scannedKline();
  return scanKline(Buffer.from(text), out) ? out : undefined;
}

const bytes = (s: string) => Buffer.from(s, 'latin1');
const HEAD = bytes('{"stream":"');
const DATA = bytes(',"data":{"e":"kline","E":');
const SYMBOL = bytes(',"s":"');
const KLINE = bytes(',"k":{"t":');
const CLOSE_TIME = bytes(',"T":');
const INTERVAL = bytes(',"i":"');
const FIRST = bytes(',"f":');
const LAST = bytes(',"L":');
const OPEN = bytes(',"o":"');
const CLOSE = bytes(',"c":"');
const HIGH = bytes(',"h":"');
const LOW = bytes(',"l":"');
const VOLUME = bytes(',"v":"');
const TRADES = bytes(',"n":');
const CLOSED = bytes(',"x":');
const TRUE = bytes('true');
const FALSE = bytes('false');
/** The kline's last fields, read past and not kept. */
const UNKEPT = [',"q":"', ',"V":"', ',"Q":"', ',"B":"'].map(bytes);
const TAIL = bytes('}}}');
const QUOTE = 34;
const BACKSLASH = 92;

/**
 * Reads a combined-stream kline frame, as the socket delivered it (UTF-8 bytes), without JSON.parse
 * and without decoding it to a string, when it is laid out exactly as Binance sends it
 * (machine-runtime/README.md, "Feed"): the keys in Binance's order, no whitespace, no escapes. Most
 * frames are updates of a candle still forming, so this is the feed's hot path: JSON.parse (or a
 * string per frame and a slice per field) would allocate for every one of them. Fills `out` and
 * returns true; anything that deviates by a byte returns false and takes the general path
 * (JSON.parse), which also decides what is malformed. Numbers are exactly what `Number(...)` of the
 * field's text gives (`decimal`, `integer`); only the symbol and interval become strings. Bytes
 * above 0x7f (UTF-8) can only sit inside strings, where they are decoded as the text would be.
 */
export function scanKline(b: Buffer, out: ScannedKline): boolean {
  // A backslash can only be inside a string (anywhere else the layout breaks): an escape, not ours.
  if (b.indexOf(BACKSLASH) >= 0 || !at(b, 0, HEAD)) return false;
  let p = quoteAfter(b, HEAD.length); // the stream name
  if (p < 0 || !at(b, ++p, DATA)) return false;
  let end = numberEnd(b, (p += DATA.length));
  if (end === p || !at(b, end, SYMBOL)) return false;
  out.eventTime = integer(b, p, end);
  p = quoteAfter(b, end + SYMBOL.length); // the symbol again
  if (p < 0 || !at(b, ++p, KLINE)) return false;
  end = numberEnd(b, (p += KLINE.length));
  if (end === p || !at(b, end, CLOSE_TIME)) return false;
  out.openTime = integer(b, p, end);
  end = numberEnd(b, (p = end + CLOSE_TIME.length));
  if (end === p || !at(b, end, SYMBOL)) return false;
  out.closeTime = integer(b, p, end);
  end = quoteAfter(b, (p = end + SYMBOL.length));
  if (end < 0 || !at(b, end + 1, INTERVAL)) return false;
  out.symbol = text(b, p, end);
  end = quoteAfter(b, (p = end + 1 + INTERVAL.length));
  if (end < 0 || !at(b, end + 1, FIRST)) return false;
  out.interval = text(b, p, end);
  end = numberEnd(b, (p = end + 1 + FIRST.length));
  if (end === p || !at(b, end, LAST)) return false;
  end = numberEnd(b, (p = end + LAST.length));
  if (end === p || !at(b, end, OPEN)) return false;
  end = quoteAfter(b, (p = end + OPEN.length));
  if (end < 0 || !at(b, end + 1, CLOSE)) return false;
  out.open = decimal(b, p, end);
  end = quoteAfter(b, (p = end + 1 + CLOSE.length));
  if (end < 0 || !at(b, end + 1, HIGH)) return false;
  out.close = decimal(b, p, end);
  end = quoteAfter(b, (p = end + 1 + HIGH.length));
  if (end < 0 || !at(b, end + 1, LOW)) return false;
  out.high = decimal(b, p, end);
  end = quoteAfter(b, (p = end + 1 + LOW.length));
  if (end < 0 || !at(b, end + 1, VOLUME)) return false;
  out.low = decimal(b, p, end);
  end = quoteAfter(b, (p = end + 1 + VOLUME.length));
  if (end < 0 || !at(b, end + 1, TRADES)) return false;
  out.volume = decimal(b, p, end);
  end = numberEnd(b, (p = end + 1 + TRADES.length));
  if (end === p || !at(b, end, CLOSED)) return false;
  p = end + CLOSED.length;
  out.closed = at(b, p, TRUE);
  if (out.closed) p += TRUE.length;
  else if (at(b, p, FALSE)) p += FALSE.length;
  else return false;
  for (let k = 0; k < UNKEPT.length; k++) {
    if (!at(b, p, UNKEPT[k]!)) return false;
    p = quoteAfter(b, p + UNKEPT[k]!.length);
    if (p++ < 0) return false;
  }
  return p === b.length - TAIL.length && at(b, p, TAIL);
}

/** Whether `lit` is at `p` in `b`. */
function at(b: Buffer, p: number, lit: Buffer): boolean {
  if (p + lit.length > b.length) return false;
  for (let i = 0; i < lit.length; i++) if (b[p + i] !== lit[i]) return false;
  return true;
}

/** The next `"` at or after `p` (-1: none). */
function quoteAfter(b: Buffer, p: number): number {
  for (; p < b.length; p++) if (b[p] === QUOTE) return p;
  return -1;
}

/** Node's own Latin-1 decoder, without `toString`'s argument handling (a third of a short field's cost). */
type Latin1 = { latin1Slice(from: number, to: number): string };

/** The string between `from` and `to`, decoded as the whole frame's text would be. */
function text(b: Buffer, from: number, to: number): string {
  for (let i = from; i < to; i++) if (b[i]! > 0x7f) return b.toString('utf8', from, to);
  return (b as unknown as Latin1).latin1Slice(from, to);
}

/** Where a bare JSON number starting at `p` ends (digits, sign, point, exponent). */
function numberEnd(b: Buffer, p: number): number {
  for (let ch = b[p]; (ch! >= 48 && ch! <= 57) || ch === 45 || ch === 43 || ch === 46 || ch === 101 || ch === 69;) {
    ch = b[++p];
  }
  return p;
}

/** `Number(text)` of the bytes between `from` and `to`: summed in place when it is plain digits (exact below 2^53). */
function integer(b: Buffer, from: number, to: number): number {
  if (to - from > 15 || to === from) return Number(text(b, from, to));
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return Number(text(b, from, to));
    n = n * 10 + d;
  }
  return n;
}

/** Powers of ten that are exact doubles (10^0 … 10^22). */
const TEN = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/**
 * `Number(text)` of a decimal such as `64045.92000000`, computed in place: its digits as an integer
 * m (exact while m < 2^53) and d digits after the point give m ÷ 10^d, one correctly rounded IEEE
 * division of two exact doubles, which is the correctly rounded value of the decimal, as `Number`
 * gives it. Anything else (a sign, an exponent, no digits, too many of them) is left to `Number`.
 */
function decimal(b: Buffer, from: number, to: number): number {
  let m = 0;
  let point = -1;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c >= 48 && c <= 57) {
      if (m > 900719925474098) return Number(text(b, from, to)); // m × 10 + 9 ≥ 2^53
      m = m * 10 + (c - 48);
    } else if (c === 46 && point < 0) point = i;
    else return Number(text(b, from, to));
  }
  const digits = point < 0 ? to - from : to - from - 1;
  const scale = point < 0 ? 0 : to - point - 1;
  if (digits === 0 || scale > 22) return Number(text(b, from, to));
  return scale === 0 ? m : m / TEN[scale]!;
}
