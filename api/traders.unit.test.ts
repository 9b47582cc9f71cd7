import type { Candle } from '../machine-runtime/candles';
import { MAX_FILTER_NODES, traderDefinitionSchema } from '../machine-runtime/trader-schema';
import { buildOptions, regionFor } from './options';
import { HttpProblem } from './problem';
import { previewFirings } from './traders-preview';
import { createTraderSchema, parseWithDefinition, previewRequestSchema, updateTraderSchema } from './traders-schema';

const FIVE_MIN = 5 * 60_000;
const T0 = Date.parse('2024-10-01T00:00:00Z');

/** Closed 5m candles whose closes are `closes`, one after another. */
const candlesOf = (closes: number[], symbol = 'BTCUSDT'): Candle[] =>
  closes.map((close, i) => ({
    symbol,
    interval: '5m',
    openTime: T0 + i * FIVE_MIN,
    closeTime: T0 + (i + 1) * FIVE_MIN - 1,
    open: close,
    high: close + 1,
    low: close - 1,
    close,
    volume: 10,
  }));

const above = (value: number, fireOn: 'change' | 'every' = 'change') =>
  traderDefinitionSchema.parse({
    symbols: ['ETHUSDT'],
    interval: '1h',
    filter: { all: [{ left: { indicator: 'price' }, op: '>', right: value }] },
    fireOn,
  });

describe('preview: candles + definition → firings (the runtime engine)', () => {
  // 0..9 up, 10..19 down, 20..29 up again: the close is above 5 on candles 6–13 and 26–29.
  const wave = [...Array(10).keys(), ...[...Array(10).keys()].reverse(), ...Array(10).keys()];

  test("fireOn 'change' fires when the filter turns true, on the preview's symbol and interval", () => {
    const candles = candlesOf(wave);
    const firings = previewFirings(above(5), candles);
    expect(firings.map((f) => f.openTime)).toEqual([candles[6]!.openTime, candles[26]!.openTime]);
    expect(firings[0]).toEqual({
      openTime: candles[6]!.openTime,
      closeTime: candles[6]!.closeTime,
      close: 6,
      values: { 'price.close': 6 },
    });
  });

  test("fireOn 'every' fires on each candle where it holds", () => {
    const firings = previewFirings(above(5, 'every'), candlesOf(wave));
    expect(firings).toHaveLength(wave.filter((c) => c > 5).length);
  });

  test('indicators warm up over the first candles: an SMA(20) cross never fires before candle 20', () => {
    const closes = Array.from({ length: 200 }, (_, i) => 100 + 10 * Math.sin(i / 8));
    const def = traderDefinitionSchema.parse({
      symbols: ['BTCUSDT'],
      interval: '5m',
      filter: { all: [{ left: { indicator: 'price' }, op: 'crossesAbove', right: { indicator: 'sma', period: 20 } }] },
    });
    const candles = candlesOf(closes);
    const firings = previewFirings(def, candles);
    expect(firings.length).toBeGreaterThan(2);
    expect(firings[0]!.openTime).toBeGreaterThanOrEqual(candles[20]!.openTime);
    expect(firings[0]!.values).toHaveProperty('sma:20');
  });

  test('no candles, no firings', () => {
    expect(previewFirings(above(1), [])).toEqual([]);
  });
});

describe('trader bodies: errors point at the field', () => {
  const definition = {
    symbols: ['BTCUSDT'],
    interval: '5m',
    filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] },
  };
  const errorsOf = (schema: Parameters<typeof parseWithDefinition>[0], body: unknown) => {
    const r = parseWithDefinition(schema, body);
    if (r.success) throw new Error('expected errors');
    return r.errors;
  };

  test('a valid body parses, with the defaults filled in and symbols upper-cased', () => {
    const r = parseWithDefinition(createTraderSchema, {
      name: ' oversold ',
      definition: { ...definition, symbols: ['btcusdt'] },
    });
    expect(r.success && r.data).toMatchObject({
      name: 'oversold',
      definition: { symbols: ['BTCUSDT'], fireOn: 'change', filter: { all: [{ left: { period: 14 } }] } },
    });
  });

  test('a bad operator, deep in a filter', () => {
    const bad = { ...definition, filter: { all: [{ left: { indicator: 'rsi' }, op: '>>', right: 70 }] } };
    expect(errorsOf(createTraderSchema, { name: 'x', definition: bad })).toEqual([
      { path: 'definition.filter.all.0.op', message: expect.stringContaining('expected one of') },
    ]);
  });

  test('an unknown indicator in a nested group', () => {
    const bad = { ...definition, filter: { any: [{ all: [{ left: { indicator: 'rsix' }, op: '>', right: 1 }] }] } };
    const errors = errorsOf(createTraderSchema, { name: 'x', definition: bad });
    expect(errors.map((e) => e.path)).toEqual(['definition.filter.any.0.all.0.left.indicator']);
  });

  test('bounds, name, unknown fields and an empty PATCH', () => {
    const wide = { all: Array.from({ length: MAX_FILTER_NODES + 1 }, () => ({ left: { indicator: 'volume' } })) };
    expect(errorsOf(createTraderSchema, { name: 'x', definition: { ...definition, filter: wide } })).toEqual([
      { path: 'definition.filter', message: expect.stringContaining(`more than ${MAX_FILTER_NODES}`) },
    ]);
    expect(errorsOf(createTraderSchema, { name: '', definition }).map((e) => e.path)).toEqual(['name']);
    expect(errorsOf(createTraderSchema, { name: 'x', definition, userId: 'u' })[0]).toMatchObject({ path: '(body)' });
    expect(errorsOf(updateTraderSchema, {})[0]!.message).toBe('send at least one of name, definition, enabled');
    expect(errorsOf(previewRequestSchema, { definition, candles: 1001 }).map((e) => e.path)).toEqual(['candles']);
    expect(errorsOf(previewRequestSchema, { definition, interval: '7m' }).map((e) => e.path)).toEqual(['interval']);
  });
});

describe('options', () => {
  test('regions with their names (unknown codes as themselves), CPU priorities with their sizes', () => {
    const o = buildOptions(['fra', 'ams', 'xyz']);
    expect(o.regions).toEqual([
      { code: 'fra', name: 'Frankfurt, Germany' },
      { code: 'ams', name: 'Amsterdam, Netherlands' },
      { code: 'xyz', name: 'xyz' },
    ]);
    expect(o.defaults).toEqual({ region: 'fra', cpuPriority: 'normal' });
    expect(o.cpuPriorities.map((p) => [p.value, p.guest.memory_mb])).toEqual([
      ['low', 256],
      ['normal', 512],
      ['high', 2048],
    ]);
  });

  test('a provision region: the default, an allowed one, or a 400 that lists them', () => {
    expect(regionFor(undefined, ['lhr', 'ams'])).toBe('lhr');
    expect(regionFor('ams', ['lhr', 'ams'])).toBe('ams');
    const err = (() => {
      try {
        regionFor('syd', ['lhr', 'ams']);
      } catch (e) {
        return e as HttpProblem;
      }
    })();
    expect(err).toBeInstanceOf(HttpProblem);
    expect(err).toMatchObject({ statusCode: 400, detail: 'region "syd" is not offered; choose one of lhr, ams' });
    expect(err!.extra.errors).toEqual([{ path: 'region', message: 'must be one of lhr, ams' }]);
  });
});
