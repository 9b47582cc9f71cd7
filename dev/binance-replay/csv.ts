import { nextOpenTime, round8 } from './aggregate';
import type { Candle, Interval } from './candles';

/** Parsing the recorded CSVs (several layouts), and deriving the kline fields they lack. */

/** Timestamps in the wild come as ISO-ish strings, seconds, milliseconds or (data.binance.vision 2025+) µs. */
function parseTime(raw: string): number {
  const s = raw.trim();
  // Fast path for the recorded files' `YYYY-MM-DD HH:MM:SS` (UTC): Date.parse dominates load time otherwise.
  if (s.length === 19 && s[4] === '-' && s[10] === ' ') {
    const n = (a: number, b: number) => Number(s.slice(a, b));
    return Date.UTC(n(0, 4), n(5, 7) - 1, n(8, 10), n(11, 13), n(14, 16), n(17, 19));
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (n >= 1e14) return Math.floor(n / 1000);
    if (n < 1e11) return Math.round(n * 1000);
    return n;
  }
  const iso = s.replace(' ', 'T');
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  if (Number.isNaN(t)) throw new Error(`unparseable time "${raw}"`);
  return t;
}

/** Column names we understand, by role; the data.binance.vision order is the fallback for headerless files. */
const COLUMN_ALIASES: Record<string, string[]> = {
  openTime: ['timestamp', 'open_time', 'opentime', 'time', 'date', 'datetime'],
  open: ['open', 'o'],
  high: ['high', 'h'],
  low: ['low', 'l'],
  close: ['close', 'c'],
  volume: ['volume', 'v', 'base_volume'],
  closeTime: ['close_time', 'closetime'],
  quoteVolume: ['quote_volume', 'quote_asset_volume', 'quotevolume'],
  trades: ['count', 'trades', 'number_of_trades', 'num_trades'],
  takerBuyBase: ['taker_buy_volume', 'taker_buy_base_volume', 'taker_buy_base_asset_volume', 'taker_buy_base'],
  takerBuyQuote: ['taker_buy_quote_volume', 'taker_buy_quote_asset_volume', 'taker_buy_quote'],
};
const HEADERLESS_ORDER = [
  'openTime',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'closeTime',
  'quoteVolume',
  'trades',
  'takerBuyBase',
  'takerBuyQuote',
];

/** Parses one recorded CSV (any of the layouts above). Rows keep file order. */
export function parseCandleCsv(text: string, interval: Interval): Candle[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const first = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const hasHeader = first.some((h) => /[a-z]/.test(h));
  const index: Record<string, number> = {};
  if (hasHeader) {
    for (const [role, aliases] of Object.entries(COLUMN_ALIASES)) {
      const i = first.findIndex((h) => aliases.includes(h));
      if (i >= 0) index[role] = i;
    }
    for (const role of ['openTime', 'open', 'high', 'low', 'close', 'volume']) {
      if (index[role] === undefined) throw new Error(`CSV has no "${role}" column (header: ${first.join(',')})`);
    }
  } else {
    const width = first.length;
    HEADERLESS_ORDER.forEach((role, i) => {
      if (i < width) index[role] = i;
    });
  }
  const out: Candle[] = [];
  for (let li = hasHeader ? 1 : 0; li < lines.length; li++) {
    const cells = (lines[li] ?? '').split(',');
    const num = (role: string): number | undefined => {
      const i = index[role];
      if (i === undefined) return undefined;
      const n = Number(cells[i]);
      return Number.isFinite(n) ? n : undefined;
    };
    const timeCell = cells[index.openTime ?? 0];
    if (timeCell === undefined) continue;
    const openTime = parseTime(timeCell);
    const closeCell = index.closeTime === undefined ? undefined : cells[index.closeTime];
    const candle = deriveMissing(
      {
        openTime,
        open: num('open') ?? NaN,
        high: num('high') ?? NaN,
        low: num('low') ?? NaN,
        close: num('close') ?? NaN,
        volume: num('volume') ?? NaN,
        closeTime: closeCell === undefined ? undefined : parseTime(closeCell),
        quoteVolume: num('quoteVolume'),
        trades: num('trades'),
        takerBuyBase: num('takerBuyBase'),
        takerBuyQuote: num('takerBuyQuote'),
      },
      interval,
    );
    if ([candle.open, candle.high, candle.low, candle.close, candle.volume].some((n) => Number.isNaN(n))) {
      throw new Error(`CSV line ${li + 1} has a non-numeric price or volume`);
    }
    out.push(candle);
  }
  return out;
}

type PartialCandle = Omit<Candle, 'closeTime' | 'quoteVolume' | 'trades' | 'takerBuyBase' | 'takerBuyQuote'> &
  Partial<Pick<Candle, 'closeTime' | 'quoteVolume' | 'trades' | 'takerBuyBase' | 'takerBuyQuote'>>;

/**
 * The recorded CSVs carry OHLCV only. Binance also reports quote volume, trade count and taker-buy
 * volumes, so they are estimated deterministically: quote volume at the bar's mean price, one trade per
 * ~1000 quote units, and a taker-buy share leaning with the bar's direction.
 */
export function deriveMissing(c: PartialCandle, interval: Interval): Candle {
  const closeTime = c.closeTime ?? nextOpenTime(c.openTime, interval) - 1;
  const quoteVolume = c.quoteVolume ?? round8((c.volume * (c.open + c.high + c.low + c.close)) / 4);
  const trades = c.trades ?? (c.volume > 0 ? Math.max(1, Math.round(quoteVolume / 1000)) : 0);
  const range = c.high - c.low;
  const buyShare = 0.5 + (range > 0 ? (0.25 * (c.close - c.open)) / range : 0);
  return {
    openTime: c.openTime,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volume,
    closeTime,
    quoteVolume,
    trades,
    takerBuyBase: c.takerBuyBase ?? round8(c.volume * buyShare),
    takerBuyQuote: c.takerBuyQuote ?? round8(quoteVolume * buyShare),
  };
}
