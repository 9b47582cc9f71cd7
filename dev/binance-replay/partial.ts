import { round8 } from './aggregate';
import type { Candle } from './candles';

/** Synthetic in-progress candles: how a candle stood partway through its life. */

/** Decimal places a recorded price shows, so interpolated prices look like the symbol's tick. */
function decimals(n: number): number {
  const s = String(n);
  const dot = s.indexOf('.');
  return dot < 0 || s.includes('e') ? 0 : s.length - dot - 1;
}

/**
 * The candle as it stood a fraction `p` (0 ≤ p < 1) into its life. The price walks
 * open → low → high → close for a rising bar (open → high → low → close for a falling one), so partial
 * highs and lows never exceed the final ones and the close event completes the path. Volumes and
 * trades grow linearly.
 */
export function partialAt(c: Candle, p: number): Candle {
  const rising = c.close >= c.open;
  const path = rising ? [c.open, c.low, c.high, c.close] : [c.open, c.high, c.low, c.close];
  const legs = [0, 1, 2].map((i) => Math.abs((path[i + 1] as number) - (path[i] as number)));
  const total = legs.reduce((a, b) => a + b, 0);
  let remaining = p * total;
  let price = c.open;
  let high = c.open;
  let low = c.open;
  for (let i = 0; i < 3 && total > 0; i++) {
    const from = path[i] as number;
    const to = path[i + 1] as number;
    const leg = legs[i] as number;
    const step = Math.min(remaining, leg);
    price = leg === 0 ? to : from + ((to - from) * step) / leg;
    high = Math.max(high, price);
    low = Math.min(low, price);
    remaining -= step;
    if (remaining <= 0) break;
  }
  const dp = Math.max(decimals(c.open), decimals(c.high), decimals(c.low), decimals(c.close));
  const tick = (x: number) => Number(x.toFixed(dp));
  return {
    ...c,
    high: tick(high),
    low: tick(low),
    close: tick(price),
    volume: round8(c.volume * p),
    quoteVolume: round8(c.quoteVolume * p),
    trades: Math.floor(c.trades * p),
    takerBuyBase: round8(c.takerBuyBase * p),
    takerBuyQuote: round8(c.takerBuyQuote * p),
  };
}
