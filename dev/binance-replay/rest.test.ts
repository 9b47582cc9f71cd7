import { type BinanceReplay, createBinanceReplay } from './server';
import { DATA_DIR, readCsv, T0 } from './test-helpers';
import { testWithData } from '../../test/kit/data';

/** `/api/v3/klines` and friends. Fast mode with no subscribers holds the clock still, so answers are exact. */

const MIN = 60_000;
let replay: BinanceReplay | undefined;

afterEach(async () => {
  await replay?.close();
  replay = undefined;
});

async function get(path: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${replay?.restUrl}${path}`);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

// 2024-10-02 00:02:30 UTC: the 00:00 5m candle is open, two and a half minutes in.
const CLOCK = Date.parse('2024-10-02T00:02:30Z');

testWithData(
  'klines come in Binance row format, closed ones exact, the open one partial, nothing after the clock',
  async () => {
    replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: CLOCK });
    const { status, body, headers } = await get('/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=4');
    expect(status).toBe(200);
    expect(headers.get('x-mbx-used-weight-1m')).toBe('2');
    const rows = body as unknown[][];
    expect(rows).toHaveLength(4);
    const csv = readCsv('BTCUSDT', '5m');
    const open = rows[3] as unknown[];
    expect(open[0]).toBe(Date.parse('2024-10-02T00:00:00Z'));
    expect(open[6]).toBe(Date.parse('2024-10-02T00:05:00Z') - 1);
    const rec = csv.get(open[0] as number);
    expect(Number(open[1])).toBe(rec?.open);
    expect(Number(open[5])).toBeLessThan(rec?.volume ?? 0);
    expect(Number(open[2])).toBeLessThanOrEqual(rec?.high ?? 0);
    for (const row of rows.slice(0, 3)) {
      expect(row).toHaveLength(12);
      expect(typeof row[1]).toBe('string');
      expect(typeof row[8]).toBe('number');
      expect(row[11]).toBe('0');
      const r = csv.get(row[0] as number);
      expect([row[1], row[2], row[3], row[4], row[5]].map(Number)).toEqual([
        r?.open,
        r?.high,
        r?.low,
        r?.close,
        r?.volume,
      ]);
    }
    // Time moves only when the replay does: the same question gets the same answer.
    const time = (await get('/api/v3/time')).body as { serverTime: number };
    expect(time.serverTime).toBe(CLOCK);
    expect((await get('/api/v3/ping')).body).toEqual({});
  },
);

testWithData('limit defaults to 500 and is capped at 1000; startTime/endTime filter by open time', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: Date.parse('2024-10-10T00:00:00Z') });
  expect(((await get('/api/v3/klines?symbol=BTCUSDT&interval=5m')).body as unknown[]).length).toBe(500);
  expect(((await get('/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=5000')).body as unknown[]).length).toBe(1000);

  const start = T0 + 10 * MIN;
  const end = T0 + 30 * MIN;
  const range = (await get(`/api/v3/klines?symbol=ETHUSDT&interval=5m&startTime=${start}&endTime=${end}`))
    .body as number[][];
  expect(range.map((r) => r[0])).toEqual([0, 1, 2, 3, 4].map((i) => start + i * 5 * MIN));
  const firstTwo = (await get(`/api/v3/klines?symbol=ETHUSDT&interval=5m&startTime=${start + 1}&limit=2`))
    .body as number[][];
  expect(firstTwo.map((r) => r[0])).toEqual([start + 5 * MIN, start + 10 * MIN]);
  const lastTwo = (await get(`/api/v3/klines?symbol=ETHUSDT&interval=5m&endTime=${end}&limit=2`)).body as number[][];
  expect(lastTwo.map((r) => r[0])).toEqual([end - 5 * MIN, end]);
  // The future is not known yet, whatever endTime asks for.
  const future = (await get(`/api/v3/klines?symbol=ETHUSDT&interval=5m&endTime=${Date.parse('2030-01-01')}&limit=3`))
    .body as number[][];
  expect(future.at(-1)?.[0]).toBe(Date.parse('2024-10-10T00:00:00Z'));
});

testWithData('intervals not recorded are aggregated from finer data', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: CLOCK, symbols: ['ETHUSDT'] });
  const rows = (await get(`/api/v3/klines?symbol=ETHUSDT&interval=15m&startTime=${T0}&limit=2`)).body as unknown[][];
  const csv = readCsv('ETHUSDT', '5m');
  const parts = [0, 1, 2].map((i) => csv.get(T0 + i * 5 * MIN));
  expect(rows[0]?.[0]).toBe(T0);
  expect(Number(rows[0]?.[1])).toBe(parts[0]?.open);
  expect(Number(rows[0]?.[2])).toBe(Math.max(...parts.map((p) => p?.high ?? 0)));
  expect(Number(rows[0]?.[3])).toBe(Math.min(...parts.map((p) => p?.low ?? Infinity)));
  expect(Number(rows[0]?.[4])).toBe(parts[2]?.close);
  expect(Number(rows[0]?.[5])).toBeCloseTo(
    parts.reduce((a, p) => a + (p?.volume ?? 0), 0),
    6,
  );
});

testWithData('errors look like Binance', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: CLOCK });
  const cases: [string, number, number][] = [
    ['symbol=DOGEUSDT&interval=5m', 400, -1121],
    ['symbol=BTCUSDT&interval=7m', 400, -1120],
    ['interval=5m', 400, -1102],
    ['symbol=BTCUSDT', 400, -1102],
    ['symbol=btcusdt&interval=5m', 400, -1100],
    ['symbol=BTCUSDT&interval=5m&startTime=abc', 400, -1100],
    ['symbol=BTCUSDT&interval=5m&limit=0', 400, -1130],
    ['symbol=BTCUSDT&interval=5m&startTime=2&endTime=1', 400, -1023],
  ];
  for (const [query, status, code] of cases) {
    const res = await get(`/api/v3/klines?${query}`);
    expect([query, res.status, (res.body as { code: number }).code]).toEqual([query, status, code]);
  }
  expect((await get('/api/v3/klines?symbol=DOGEUSDT&interval=5m')).body).toEqual({
    code: -1121,
    msg: 'Invalid symbol.',
  });
});

testWithData('the admin route sets and validates faults', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: CLOCK });
  const put = (body: unknown) =>
    fetch(`${replay?.restUrl}/admin/faults`, { method: 'PUT', body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as unknown,
    }));
  expect(await put({ dropEvery: 10 })).toEqual({ status: 200, body: { dropEvery: 10 } });
  expect((await get('/admin/faults')).body).toEqual({ dropEvery: 10 });
  expect((await put({ dropEvery: -1 })).status).toBe(400);
  expect((await put({ nonsense: 1 })).status).toBe(400);
  expect((await get('/admin/stats')).body).toMatchObject({ connections: 0, messagesSent: 0, clock: CLOCK });
});
