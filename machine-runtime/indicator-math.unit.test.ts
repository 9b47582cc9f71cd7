import { ATR, BollingerBands, EMA, MACD, RSI, SMA } from 'trading-signals';
import type { Candle } from './candles';
import { StreamState } from './indicators';
import { readCsv } from './test-support/data';
import { haveRecordedData } from '../test/kit/data';
import type { Operand } from './trader-schema';

/**
 * indicator-math.ts computes trading-signals' indicators itself, faster: these must be the library's
 * numbers bit for bit (Object.is, NaN where the library has no result), candle after candle, for
 * every indicator the runtime offers, short and long periods alike.
 */
type Lib = { add(input: never): unknown; getResult(): unknown; getRequiredInputs(): number };

function library(o: Operand): { lib: Lib; input: (c: Candle) => unknown; read: (r: unknown) => number } {
  const num = (r: unknown) => (r === null ? NaN : (r as number));
  const field = (name: string) => (r: unknown) => (r === null ? NaN : ((r as Record<string, number>)[name] ?? NaN));
  const close = (c: Candle) => c.close;
  switch (o.indicator) {
    case 'sma':
      return { lib: new SMA(o.period), input: close, read: num };
    case 'ema':
      return { lib: new EMA(o.period), input: close, read: num };
    case 'rsi':
      return { lib: new RSI(o.period), input: close, read: num };
    case 'atr':
      return { lib: new ATR(o.period), input: (c) => ({ high: c.high, low: c.low, close: c.close }), read: num };
    case 'volumeSma':
      return { lib: new SMA(o.period), input: (c) => c.volume, read: num };
    case 'macd':
      return {
        lib: new MACD(new EMA(o.fast), new EMA(o.slow), new EMA(o.signal)),
        input: close,
        read: field(o.output),
      };
    case 'bollinger':
      return { lib: new BollingerBands(o.period, o.stdDev), input: close, read: field(o.output) };
    default:
      throw new Error(`no library reference for ${o.indicator}`);
  }
}

const operands: Operand[] = [];
for (const period of [1, 2, 3, 14, 20, 50, 200]) {
  operands.push(
    { indicator: 'sma', period },
    { indicator: 'ema', period },
    { indicator: 'rsi', period },
    { indicator: 'atr', period },
    { indicator: 'volumeSma', period },
    { indicator: 'bollinger', period, stdDev: 2, output: 'upper' },
    { indicator: 'bollinger', period, stdDev: 1.5, output: 'lower' },
    { indicator: 'bollinger', period, stdDev: 2, output: 'middle' },
  );
}
for (const [fast, slow, signal] of [
  [12, 26, 9],
  [1, 2, 1],
  [5, 35, 5],
  [26, 12, 9],
])
  for (const output of ['macd', 'signal', 'histogram'] as const)
    operands.push({ indicator: 'macd', fast: fast!, slow: slow!, signal: signal!, output });

/** A random walk with flat stretches (zero gains and losses), zero volume now and then. */
function walk(n: number, seed: number): Candle[] {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  let price = 100;
  return Array.from({ length: n }, (_, i) => {
    const flat = i % 37 < 5;
    const open = price;
    price = flat ? price : Math.max(0.01, price + (rnd() - 0.5) * 3);
    const high = Math.max(open, price) + (flat ? 0 : rnd());
    const low = Math.min(open, price) - (flat ? 0 : rnd());
    const volume = i % 11 === 0 ? 0 : rnd() * 1000;
    return { symbol: 'X', interval: '1m', openTime: i, closeTime: i + 1, open, high, low, close: price, volume };
  });
}

function expectLibraryValues(candles: Candle[]) {
  const state = new StreamState(1000);
  state.require(operands);
  const refs = operands.map((o) => ({ o, ...library(o), inputs: 0 }));
  let mismatches = 0;
  for (const c of candles) {
    state.add(c);
    for (const r of refs) {
      r.lib.add(r.input(c) as never);
      const want = ++r.inputs < r.lib.getRequiredInputs() ? NaN : r.read(r.lib.getResult());
      const got = state.slot(r.o).cur;
      if (!Object.is(got, want) && mismatches++ < 5)
        expect({ operand: r.o, candle: c.openTime, got }).toEqual({ operand: r.o, candle: c.openTime, got: want });
    }
  }
  expect(mismatches).toBe(0);
}

describe("the runtime's indicator arithmetic", () => {
  test("is trading-signals' own, bit for bit, on random walks", () => {
    expectLibraryValues(walk(1500, 7));
    expectLibraryValues(walk(600, 12345));
  });

  (haveRecordedData ? test : test.skip)("is trading-signals' own, bit for bit, on recorded BTCUSDT 1h", () => {
    expectLibraryValues(readCsv('BTCUSDT', '1h'));
  });
});
