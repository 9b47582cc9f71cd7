import { aggregate } from './aggregate';
import { type Candle, DataDirMissingError, DataIndex } from './candles';
import { parseCandleCsv } from './csv';
import { partialAt } from './partial';
import { loadCandles } from './candles';
import { DATA_DIR, readCsv } from './test-helpers';
import { testWithData } from '../../test/kit/data';

/** Loading recorded candles; the synthetic cases need no data. */

testWithData('loadCandles returns the recorded rows exactly, times in ms', () => {
  const candles = loadCandles(DATA_DIR, 'ETHUSDT', '5m');
  const csv = readCsv('ETHUSDT', '5m');
  expect(candles).toHaveLength(csv.size);
  const got = candles.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume, c.closeTime - c.openTime]);
  const want = [...csv].map(([t, r]) => [t, r.open, r.high, r.low, r.close, r.volume, 5 * 60_000 - 1]);
  expect(got).toEqual(want);
});

testWithData('the 1h file in microseconds loads as milliseconds', () => {
  const candles = loadCandles(DATA_DIR, 'BTCUSDT', '1h').filter((c) => c.openTime >= Date.parse('2025-01-01'));
  expect(candles).toHaveLength(744);
  expect(candles[0]?.openTime).toBe(Date.parse('2025-01-01T00:00:00Z'));
  expect(candles[0]?.close).toBe(94401.14);
});

testWithData('1m aggregates to exactly the recorded 5m', () => {
  const fine = loadCandles(DATA_DIR, 'BTCUSDT', '1m');
  const agg = aggregate(fine, '1m', '5m');
  const rec = readCsv('BTCUSDT', '5m');
  expect(agg.length).toBe(10_000);
  expect(agg.map((c) => [c.openTime, c.open, c.high, c.low, c.close])).toEqual(
    [...rec].map(([t, r]) => [t, r.open, r.high, r.low, r.close]),
  );
  expect(agg.filter((c) => Math.abs(c.volume - (rec.get(c.openTime)?.volume ?? NaN)) > 1e-6)).toEqual([]);
});

test('a missing data folder says so plainly', () => {
  expect(() => new DataIndex('/nonexistent/binance')).toThrow(DataDirMissingError);
  expect(() => new DataIndex('/nonexistent/binance')).toThrow(/recorded data is absent.*BINANCE_WS_URL/);
});

test('headerless data.binance.vision rows (µs) keep their own close time, trades and taker volumes', () => {
  const csv =
    '1735689600000000,93576.0,94509.42,93489.03,94401.14,755.9901,1735693199999999,70900000.1,120000,400.5,37600000.2,0\n';
  const [c] = parseCandleCsv(csv, '1h');
  expect(c).toEqual({
    openTime: 1735689600000,
    open: 93576,
    high: 94509.42,
    low: 93489.03,
    close: 94401.14,
    volume: 755.9901,
    closeTime: 1735693199999,
    quoteVolume: 70900000.1,
    trades: 120000,
    takerBuyBase: 400.5,
    takerBuyQuote: 37600000.2,
  });
});

test('partial candles stay inside the final one and grow toward it', () => {
  const base: Candle = {
    openTime: 0,
    open: 100,
    high: 110,
    low: 95,
    close: 105,
    volume: 50,
    closeTime: 59_999,
    quoteVolume: 5000,
    trades: 40,
    takerBuyBase: 30,
    takerBuyQuote: 3000,
  };
  const falling = { ...base, close: 97 };
  for (const c of [base, falling]) {
    let lastVolume = -1;
    for (const p of [0, 0.1, 0.33, 0.5, 0.66, 0.9, 0.999]) {
      const s = partialAt(c, p);
      expect(s.open).toBe(c.open);
      expect(s.high).toBeLessThanOrEqual(c.high);
      expect(s.low).toBeGreaterThanOrEqual(c.low);
      expect(s.close).toBeGreaterThanOrEqual(s.low);
      expect(s.close).toBeLessThanOrEqual(s.high);
      expect(s.volume).toBeGreaterThan(lastVolume);
      lastVolume = s.volume;
    }
    expect(partialAt(c, 0.999).close).toBeCloseTo(c.close, 0);
  }
});
