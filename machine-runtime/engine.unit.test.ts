import type { Trader } from '../store/types';
import type { Candle } from './candles';
import { TraderEngine, type Firing } from './engine';
import { plainSma, readCsv } from './test-support/data';
import { testWithData } from '../test/kit/data';
import { traderDefinitionSchema } from './trader-schema';

const trader = (id: string, definition: unknown, enabled = true): Trader => ({
  id,
  userId: 'u',
  name: `trader ${id}`,
  definition,
  enabled,
  updatedAt: new Date(0),
});

const crossover = {
  symbols: ['BTCUSDT'],
  interval: '5m',
  filter: {
    all: [
      { left: { indicator: 'price', field: 'close' }, op: 'crossesAbove', right: { indicator: 'sma', period: 20 } },
    ],
  },
  fireOn: 'every',
};

function run(candles: Candle[], traders: Trader[], warmup = 0) {
  const fired: Firing[] = [];
  const engine = new TraderEngine({ onFire: (f) => fired.push(f), candleCapacity: 300 });
  engine.setTraders(traders);
  engine.onClosed(candles.slice(0, warmup), false);
  engine.onClosed(candles.slice(warmup), true);
  return { engine, fired };
}

describe('trader engine on recorded data', () => {
  testWithData('close crossing above SMA(20) fires on exactly the expected candles', () => {
    const candles = readCsv('BTCUSDT', '5m').slice(0, 3000);
    const closes = candles.map((c) => c.close);
    const sma = plainSma(closes, 20);
    const expected: number[] = [];
    for (let i = 1; i < candles.length; i++) {
      const [p, n] = [sma[i - 1], sma[i]];
      if (p != null && n != null && closes[i - 1]! <= p && closes[i]! > n) expected.push(candles[i]!.openTime);
    }
    expect(expected.length).toBeGreaterThan(50);
    const { fired } = run(candles, [trader('a', crossover)]);
    expect(fired.map((f) => f.candle.openTime)).toEqual(expected);
    expect(fired[0]!.values['sma:20']).toBeCloseTo(sma[candles.findIndex((c) => c.openTime === expected[0])]!, 6);
  });

  testWithData(
    "fireOn 'change' fires when the filter turns true, 'every' on each candle it holds; warm-up never fires",
    () => {
      const candles = readCsv('ETHUSDT', '5m').slice(0, 2000);
      const closes = candles.map((c) => c.close);
      const sma = plainSma(closes, 50);
      const above = candles.map((_, i) => sma[i] != null && closes[i]! > sma[i]!);
      const warmup = 200;
      const onChange: number[] = [];
      const onEvery: number[] = [];
      for (let i = warmup; i < candles.length; i++) {
        if (above[i]) onEvery.push(candles[i]!.openTime);
        if (above[i] && !above[i - 1]) onChange.push(candles[i]!.openTime);
      }
      const def = (fireOn: string) => ({
        symbols: ['ethusdt'],
        interval: '5m',
        filter: { any: [{ left: { indicator: 'price' }, op: '>', right: { indicator: 'sma', period: 50 } }] },
        fireOn,
      });
      const { fired } = run(candles, [trader('c', def('change')), trader('e', def('every'))], warmup);
      expect(fired.filter((f) => f.trader.id === 'c').map((f) => f.candle.openTime)).toEqual(onChange);
      expect(fired.filter((f) => f.trader.id === 'e').map((f) => f.candle.openTime)).toEqual(onEvery);
    },
  );

  testWithData('nested groups, numbers, volume ratio and % change; traders share indicator instances', () => {
    const candles = readCsv('SOLUSDT', '5m').slice(0, 3000);
    const def = {
      symbols: ['SOLUSDT'],
      interval: '5m',
      fireOn: 'every',
      filter: {
        all: [
          { left: { indicator: 'volumeRatio', period: 20 }, op: '>=', right: 3 },
          {
            any: [
              { left: { indicator: 'change', period: 3 }, op: '>', right: 1 },
              { left: { indicator: 'rsi' }, op: '>', right: 70 },
            ],
          },
        ],
      },
    };
    const vol = plainSma(
      candles.map((c) => c.volume),
      20,
    );
    const { fired, engine } = run(candles, [trader('g', def), trader('h', { ...def, fireOn: 'change' })]);
    const gFired = fired.filter((f) => f.trader.id === 'g');
    expect(gFired.length).toBeGreaterThan(0);
    for (const f of gFired) {
      const i = candles.findIndex((c) => c.openTime === f.candle.openTime);
      expect(candles[i]!.volume / vol[i]!).toBeGreaterThanOrEqual(3);
      const change = ((candles[i]!.close - candles[i - 3]!.close) / candles[i - 3]!.close) * 100;
      expect(change > 1 || (f.values['rsi:14'] ?? 0) > 70).toBe(true);
    }
    // vsma:20, change:3, rsi:14 (+ candle reader): shared between the two traders.
    expect(engine.streamState('SOLUSDT|5m')!.familyCount).toBe(3);
  });
});

describe('trader schema and loading', () => {
  test('refuses invalid definitions with the path of the problem, keeps the valid ones', () => {
    const engine = new TraderEngine({ onFire: () => undefined });
    const result = engine.setTraders([
      trader('ok', crossover),
      trader('bad', { ...crossover, interval: '7m' }),
      trader('bad2', { ...crossover, filter: { all: [{ left: { indicator: 'rsi' }, op: 'near', right: 3 }] } }),
      trader('off', crossover, false),
    ]);
    expect(result.loaded).toBe(1);
    expect(result.invalid.map((i) => i.id)).toEqual(['bad', 'bad2']);
    expect(result.invalid[0]!.error).toContain('interval');
    expect(engine.streams()).toEqual(['BTCUSDT|5m']);
  });

  test('defaults: fireOn change, rsi 14, price close; symbols upper-cased', () => {
    const d = traderDefinitionSchema.parse({
      symbols: ['btcusdt'],
      interval: '1h',
      filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: { indicator: 'price' } }] },
    });
    expect(d).toEqual({
      symbols: ['BTCUSDT'],
      interval: '1h',
      fireOn: 'change',
      filter: {
        all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: { indicator: 'price', field: 'close' } }],
      },
    });
  });
});

testWithData('memory stays bounded over a long run: buffers, indicator state and dedupe set are capped', () => {
  const candles = readCsv('BTCUSDT', '1m');
  const def = {
    symbols: ['BTCUSDT'],
    interval: '1m',
    fireOn: 'every',
    filter: {
      any: [
        { left: { indicator: 'price' }, op: '>', right: 0 },
        { left: { indicator: 'macd', output: 'histogram' }, op: 'crossesAbove', right: 0 },
        { left: { indicator: 'bollinger', output: 'upper' }, op: '>', right: { indicator: 'atr' } },
      ],
    },
  };
  let firedCount = 0;
  const engine = new TraderEngine({ candleCapacity: 250, onFire: () => firedCount++ });
  engine.setTraders([trader('m', def)]);
  const gc = (globalThis as { gc?: () => void }).gc;
  let heapAtHalf = 0;
  candles.forEach((c, i) => {
    engine.onClosed([c], true);
    if (i === candles.length / 2 && gc) {
      gc();
      heapAtHalf = process.memoryUsage().heapUsed;
    }
  });
  expect(firedCount).toBe(candles.length); // price > 0 holds on every candle
  expect(engine.streamState('BTCUSDT|1m')!.candles.size).toBe(250);
  expect(engine.recentFiringsSize()).toBeLessThanOrEqual(10_000);
  if (gc) {
    gc();
    // 25,000 more candles must not add memory proportional to them (a leak would be several MB).
    expect(process.memoryUsage().heapUsed - heapAtHalf).toBeLessThan(4 * 1024 * 1024);
  }
});
