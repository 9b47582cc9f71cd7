import type { Candle, Interval } from './candles';

/** Binance's kline wire format, shared by the WebSocket stream and REST so that both agree on every field. */

/** Prices and volumes go out as strings with 8 decimals. */
export const fmt = (n: number) => n.toFixed(8);

export interface KlineEvent {
  symbol: string;
  interval: Interval;
  /** The candle's times and trade ids. */
  candle: Candle;
  /** Its values as shown at `eventTime`: the candle itself when closed, else partialAt(…). */
  shown: Candle;
  eventTime: number;
  firstTradeId: number;
  isClose: boolean;
  /** `timeUnit=MICROSECOND`: times in µs. */
  micro: boolean;
}

/** The `kline` event payload (the `data` of a combined stream frame). */
export function klineEventJson({
  symbol,
  interval,
  candle: c,
  shown,
  eventTime: t,
  firstTradeId: first,
  isClose,
  micro,
}: KlineEvent): string {
  const m = micro ? 1000 : 1;
  return JSON.stringify({
    e: 'kline',
    E: t * m,
    s: symbol,
    k: {
      t: c.openTime * m,
      T: c.closeTime * m,
      s: symbol,
      i: interval,
      f: shown.trades > 0 ? first : -1,
      L: shown.trades > 0 ? first + shown.trades - 1 : -1,
      o: fmt(shown.open),
      c: fmt(shown.close),
      h: fmt(shown.high),
      l: fmt(shown.low),
      v: fmt(shown.volume),
      n: shown.trades,
      x: isClose,
      q: fmt(shown.quoteVolume),
      V: fmt(shown.takerBuyBase),
      Q: fmt(shown.takerBuyQuote),
      B: '0',
    },
  });
}

/** One row of `GET /api/v3/klines`. */
export function klineRow(c: Candle, shown: Candle): unknown[] {
  return [
    c.openTime,
    fmt(shown.open),
    fmt(shown.high),
    fmt(shown.low),
    fmt(shown.close),
    fmt(shown.volume),
    c.closeTime,
    fmt(shown.quoteVolume),
    shown.trades,
    fmt(shown.takerBuyBase),
    fmt(shown.takerBuyQuote),
    '0',
  ];
}
