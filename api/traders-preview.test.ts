import { testWithData } from '../test/kit/data';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

// The real runtime's stack: binance-replay serves the recorded BTCUSDT klines (REST) to the API.
let api: ApiStack;
beforeAll(async () => {
  api = await createApiStack({ realRuntime: true });
});
afterAll(async () => api?.close());

const rsiBelow = (value: number, fireOn: 'change' | 'every' = 'every') => ({
  symbols: ['BTCUSDT'],
  interval: '5m',
  filter: { all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: value }] },
  fireOn,
});

async function token() {
  return api.token(await api.createUser('elite'));
}

describe('POST /v1/traders/preview (recorded klines through binance-replay)', () => {
  testWithData('the last 500 closed 5m candles of the definition’s symbol, and where it fired', async () => {
    const res = await api.call('POST', '/v1/traders/preview', {
      token: await token(),
      body: { definition: rsiBelow(101) },
    });
    expect(res.status).toBe(200);
    const body = res.json as {
      symbol: string;
      interval: string;
      candles: number;
      firings: { openTime: number; closeTime: number; close: number; values: Record<string, number | null> }[];
      from: string;
      to: string;
    };
    expect(body).toMatchObject({ symbol: 'BTCUSDT', interval: '5m', candles: 500 });
    // RSI < 101 holds wherever RSI has a value: every candle after the 14-candle warm-up fires ('every').
    expect(body.firings.length).toBeGreaterThan(450);
    expect(body.firings.length).toBeLessThan(500);
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(500 * 5 * 60_000 - 1);
    const last = body.firings.at(-1)!;
    expect(last.closeTime).toBe(Date.parse(body.to));
    expect(last.values['rsi:14']).toEqual(expect.any(Number));
    expect(body.firings.every((f, i) => i === 0 || f.openTime > body.firings[i - 1]!.openTime)).toBe(true);
  });

  testWithData('symbol, interval and 1000 candles (two pages) override the definition’s', async () => {
    const t = await token();
    const body = { definition: rsiBelow(30, 'change'), symbol: 'btcusdt', interval: '1m', candles: 1000 };
    const res = await api.call('POST', '/v1/traders/preview', { token: t, body });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ symbol: 'BTCUSDT', interval: '1m', candles: 1000 });
    expect(Date.parse(res.json.to as string) - Date.parse(res.json.from as string)).toBe(1000 * 60_000 - 1);
    // 'change': a firing only where the filter turns true, so never on two candles in a row.
    const firings = res.json.firings as { openTime: number }[];
    expect(firings.every((f, i) => i === 0 || f.openTime - firings[i - 1]!.openTime > 60_000)).toBe(true);
  });

  testWithData('a symbol Binance does not know: 422 with a sentence', async () => {
    const res = await api.call('POST', '/v1/traders/preview', {
      token: await token(),
      body: { definition: rsiBelow(30), symbol: 'DOGEUSDT' },
    });
    expect(res.status).toBe(422);
    expect(res.json.detail).toBe('Binance does not know the symbol DOGEUSDT: pick one it lists, such as BTCUSDT');
    expect(res.json.errors).toEqual([{ path: 'symbol', message: 'unknown to Binance' }]);
  });

  test('invalid requests: 400 pointing at the field, before Binance is asked; no token: 401', async () => {
    const t = await token();
    const bad = { ...rsiBelow(30), filter: { all: [{ left: { indicator: 'rsi', period: 0 }, op: '<', right: 30 }] } };
    const cases: [unknown, string][] = [
      [{ definition: bad }, 'definition.filter.all.0.left.period'],
      [{ definition: rsiBelow(30), candles: 1001 }, 'candles'],
      [{ definition: rsiBelow(30), symbol: 'BTC-USDT' }, 'symbol'],
      [{}, 'definition'],
    ];
    for (const [body, field] of cases) {
      const res = await api.call('POST', '/v1/traders/preview', { token: t, body });
      expect(res.status).toBe(400);
      expect((res.json.errors as { path: string }[]).map((e) => e.path)).toEqual([field]);
    }
    expect((await api.call('POST', '/v1/traders/preview', { body: { definition: rsiBelow(30) } })).status).toBe(401);
  });
});

describe('GET /v1/options and the regions POST /v1/machines takes', () => {
  test('regions from API_REGIONS with their names, CPU priorities with their machine sizes, the defaults', async () => {
    const res = await api.call('GET', '/v1/options');
    expect(res.status).toBe(200);
    expect(res.json.regions).toEqual(expect.arrayContaining([{ code: 'ams', name: 'Amsterdam, Netherlands' }]));
    expect(res.json.cpuPriorities).toEqual([
      { value: 'low', label: expect.any(String), guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } },
      { value: 'normal', label: expect.any(String), guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 } },
      { value: 'high', label: expect.any(String), guest: { cpu_kind: 'performance', cpus: 1, memory_mb: 2048 } },
    ]);
    expect(res.json.defaults).toEqual({ region: 'ams', cpuPriority: 'normal' });

    const narrow = await api.startApp({ API_REGIONS: 'fra,lhr' });
    const options = await api.call('GET', '/v1/options', { base: narrow.url });
    expect(options.json).toMatchObject({ regions: [{ code: 'fra' }, { code: 'lhr' }], defaults: { region: 'fra' } });
    const refused = await api.call('POST', '/v1/machines', {
      token: await token(),
      base: narrow.url,
      body: { region: 'ams' },
    });
    expect(refused.status).toBe(400);
    expect(refused.json.detail).toBe('region "ams" is not offered; choose one of fra, lhr');
    expect(refused.json.errors).toEqual([{ path: 'region', message: 'must be one of fra, lhr' }]);
  });

  test('the OpenAPI document has the trader, preview and options routes and their schemas', async () => {
    const doc = (await api.call('GET', '/openapi.json')).json as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.paths['/v1/traders']!)).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/traders/{id}']!)).toEqual(['get', 'patch', 'delete']);
    expect(doc.paths['/v1/traders/preview']).toHaveProperty('post');
    expect(doc.paths['/v1/options']).toHaveProperty('get');
    expect(doc.components.schemas.TraderCreate?.properties).toHaveProperty('definition');
    expect(doc.components.schemas.TraderPreviewRequest?.properties).toHaveProperty('candles');
    expect(doc.components.schemas.Options?.properties).toHaveProperty('cpuPriorities');
    expect(doc.components.schemas.FilterGroup).toBeDefined();
    // Every $ref resolves to a component.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.filter((r) => !(r in doc.components.schemas))).toEqual([]);
  });
});
