import { RingBuffer } from './candles';
import { StreamState } from './indicators';
import { readCsv } from './test-support/data';
import { recordedDataDir as dataDir, testWithData } from '../test/kit/data';
import type { Operand } from './trader-schema';

/**
 * Convention (see README): indicators are trading-signals' own. RSI is Wilder-smoothed, Bollinger
 * uses the population standard deviation, and EMA is seeded with the FIRST close (Tulip convention),
 * published once N closes were seen. So RSI, SMA and Bollinger equal REFERENCE-VALUES.md from the
 * first value; EMA and MACD differ early (the reference seeds EMA with an SMA) and agree once the
 * seed has decayed, which the last checkpoint (744 bars in) shows.
 */
const ref = {
  rsiFirst: { t: 1735740000000, v: 46.671 },
  emaFirstTaLib: { t: 1735758000000, v: 93900.4325 },
  last: {
    t: 1738364400000,
    rsi: 36.8197,
    ema: 103579.9536,
    macd: { macd: -614.3617, signal: -357.2411, histogram: -257.1206 },
    bb: { upper: 106044.195, middle: 103836.4965, lower: 101628.798 },
  },
};

const ops: Record<string, Operand> = {
  rsi: { indicator: 'rsi', period: 14 },
  ema: { indicator: 'ema', period: 20 },
  sma: { indicator: 'sma', period: 20 },
  macd: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'macd' },
  macdSignal: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'signal' },
  macdHist: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'histogram' },
  bbU: { indicator: 'bollinger', period: 20, stdDev: 2, output: 'upper' },
  bbM: { indicator: 'bollinger', period: 20, stdDev: 2, output: 'middle' },
  bbL: { indicator: 'bollinger', period: 20, stdDev: 2, output: 'lower' },
};

describe('indicators on BTCUSDT-1h-2025-01.csv', () => {
  testWithData('match REFERENCE-VALUES.md in the documented convention', () => {
    const candles = readCsv('BTCUSDT', '1h');
    expect(candles).toHaveLength(744);
    const s = new StreamState(1000);
    s.require(Object.values(ops));
    // Five instances serve nine operands: one per indicator config, shared by its outputs.
    expect(s.familyCount).toBe(5);
    const emaSeries: (number | null)[] = [];
    const closes: number[] = [];
    for (const c of candles) {
      s.add(c);
      closes.push(c.close);
      if (c.openTime === ref.rsiFirst.t) expect(s.value(ops.rsi!)).toBeCloseTo(ref.rsiFirst.v, 4);
      if (c.openTime === ref.emaFirstTaLib.t) {
        // The TA-Lib seed is the SMA of the first 20 closes: our SMA(20) equals it exactly...
        expect(s.value(ops.sma!)).toBeCloseTo(ref.emaFirstTaLib.v, 4);
        // ...while our EMA(20) carries the first-close seed (Tulip), so it differs here.
        expect(Math.abs(s.value(ops.ema!)! - ref.emaFirstTaLib.v)).toBeGreaterThan(1);
      }
      emaSeries.push(s.value(ops.ema!));
    }
    expect(candles.at(-1)!.openTime).toBe(ref.last.t);
    expect(s.value(ops.rsi!)).toBeCloseTo(ref.last.rsi, 3);
    expect(s.value(ops.ema!)).toBeCloseTo(ref.last.ema, 3);
    expect(s.value(ops.macd!)).toBeCloseTo(ref.last.macd.macd, 3);
    expect(s.value(ops.macdSignal!)).toBeCloseTo(ref.last.macd.signal, 3);
    expect(s.value(ops.macdHist!)).toBeCloseTo(ref.last.macd.histogram, 3);
    expect(s.value(ops.bbU!)).toBeCloseTo(ref.last.bb.upper, 3);
    expect(s.value(ops.bbM!)).toBeCloseTo(ref.last.bb.middle, 3);
    expect(s.value(ops.bbL!)).toBeCloseTo(ref.last.bb.lower, 3);

    // The EMA convention, checked in plain code: seed = first close, k = 2/(N+1), shown from the 20th close.
    let e = closes[0]!;
    closes.forEach((c, i) => {
      if (i > 0) e = c * (2 / 21) + e * (1 - 2 / 21);
      if (i < 19) expect(emaSeries[i]).toBeNull();
      else expect(emaSeries[i]).toBeCloseTo(e, 6);
    });
  });

  testWithData('a late indicator catches up from the candle buffer and equals one fed from the start', () => {
    const candles = readCsv('BTCUSDT', '1h').slice(0, 200);
    const early = new StreamState(500);
    early.require([ops.rsi!]);
    const late = new StreamState(500);
    for (const c of candles.slice(0, 100)) {
      early.add(c);
      late.add(c);
    }
    late.require([ops.rsi!]);
    for (const c of candles.slice(100)) {
      early.add(c);
      late.add(c);
    }
    expect(late.value(ops.rsi!)).toBeCloseTo(early.value(ops.rsi!)!, 10);
  });

  testWithData('aggregating the 1m file to 5m equals the 5m file', () => {
    const m1 = readCsv('BTCUSDT', '1m');
    const m5 = readCsv('BTCUSDT', '5m');
    const byOpen = new Map<number, { open: number; high: number; low: number; close: number; volume: number }>();
    for (const c of m1) {
      const t = c.openTime - (c.openTime % 300_000);
      const a = byOpen.get(t);
      if (!a) byOpen.set(t, { open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume });
      else {
        a.high = Math.max(a.high, c.high);
        a.low = Math.min(a.low, c.low);
        a.close = c.close;
        a.volume += c.volume;
      }
    }
    expect(byOpen.size).toBe(m5.length);
    for (const c of m5) {
      const a = byOpen.get(c.openTime)!;
      expect([a.open, a.high, a.low, a.close]).toEqual([c.open, c.high, c.low, c.close]);
      expect(a.volume).toBeCloseTo(c.volume, 6);
    }
    expect(dataDir).toBeTruthy();
  });
});

test('ring buffer keeps only the newest `capacity` items', () => {
  const r = new RingBuffer<number>(3);
  for (let i = 1; i <= 10; i++) r.push(i);
  expect(r.size).toBe(3);
  expect(r.toArray()).toEqual([8, 9, 10]);
  expect(r.at(-1)).toBe(10);
  expect(r.at(0)).toBe(8);
  expect(r.at(3)).toBeUndefined();
});
