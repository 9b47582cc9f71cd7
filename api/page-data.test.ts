import { createCloudExecutionClient, type MachineStatus } from '../client';
import { testWithData } from '../test/kit/data';
import { untilValue } from '../test/kit/wait';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

// What the trader's page reads besides its machine: stored signals, the chart's candles (recorded
// klines through binance-replay) and the machine's status as server-sent events.
let api: ApiStack;
beforeAll(async () => {
  api = await createApiStack({ realRuntime: true });
});
afterAll(async () => api?.close());

const definition = {
  symbols: ['BTCUSDT', 'ETHUSDT'],
  interval: '1m',
  filter: { all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: 30 }] },
};

async function userWithSignals(n: number) {
  const userId = await api.createUser('elite');
  const token = await api.token(userId);
  const trader = await api.call('POST', '/v1/traders', { token, body: { name: 'oversold', definition } });
  const store = api.stack.db.store.asUser(userId);
  const firedAt = new Date('2024-10-03T00:00:00Z'); // every signal fired in the same instant: ties page by id
  for (let i = 0; i < n; i++)
    await store.insertTradeSignal({
      traderId: trader.json.id as string,
      symbol: i % 2 ? 'ETHUSDT' : 'BTCUSDT',
      interval: '1m',
      candleOpenAt: new Date(firedAt.getTime() - (i + 1) * 60_000),
      firedAt: i < 3 ? firedAt : new Date(firedAt.getTime() - i * 60_000),
      payload: {
        traderName: 'oversold',
        close: 100 + i,
        values: { 'rsi:14': 25 + i / 10 },
        aiNote: i === 0 ? 'A dip.' : undefined,
      },
    });
  return { userId, token };
}

describe('GET /v1/signals', () => {
  test('newest first, the values that fired, the AI note; pages by cursor without skipping a tie; filters', async () => {
    const { token } = await userWithSignals(7);
    const first = await api.call('GET', '/v1/signals?limit=2', { token });
    expect(first.status).toBe(200);
    const page1 = first.json.signals as { id: string; close: number; values: object; aiNote: string | null }[];
    expect(page1).toHaveLength(2);
    expect(page1[0]).toMatchObject({
      traderName: 'oversold',
      interval: '1m',
      values: { 'rsi:14': expect.any(Number) },
    });
    const seen = [...page1];
    let next = first.json.next as string | null;
    while (next) {
      const page = await api.call('GET', `/v1/signals?limit=2&before=${encodeURIComponent(next)}`, { token });
      seen.push(...(page.json.signals as typeof page1));
      next = page.json.next as string | null;
    }
    expect(new Set(seen.map((s) => s.id)).size).toBe(7);
    expect(seen.map((s) => s.close).sort()).toEqual([100, 101, 102, 103, 104, 105, 106]);
    expect(seen.filter((s) => s.aiNote === 'A dip.')).toHaveLength(1);

    const eth = await api.call('GET', '/v1/signals?symbol=ethusdt&interval=1m', { token });
    expect((eth.json.signals as { symbol: string }[]).map((s) => s.symbol)).toEqual(['ETHUSDT', 'ETHUSDT', 'ETHUSDT']);
    expect(eth.json.next).toBeNull();
  });

  test("another user's signals do not exist for me (RLS); bad queries: 400 at the field; no token: 401", async () => {
    await userWithSignals(2);
    const { token } = await userWithSignals(0);
    expect((await api.call('GET', '/v1/signals', { token })).json).toEqual({ signals: [], next: null });
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['before=yesterday', 'before'],
      ['interval=7m', 'interval'],
      ['userId=x', '(query)'],
    ]) {
      const res = await api.call('GET', `/v1/signals?${query}`, { token });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.json.errors)).toContain(field === '(query)' ? 'userId' : field);
    }
    expect((await api.call('GET', '/v1/signals')).status).toBe(401);
  });
});

describe('GET /v1/market/klines (recorded klines through binance-replay)', () => {
  testWithData('the last N closed candles, oldest first; a symbol Binance does not know: 422', async () => {
    const { token } = await userWithSignals(0);
    const res = await api.call('GET', '/v1/market/klines?symbol=btcusdt&interval=1m&limit=120', { token });
    expect(res.status).toBe(200);
    const candles = res.json.candles as { openTime: number; closeTime: number; close: number }[];
    expect(res.json).toMatchObject({ symbol: 'BTCUSDT', interval: '1m' });
    expect(candles).toHaveLength(120);
    expect(candles.every((c, i) => i === 0 || c.openTime - candles[i - 1]!.openTime === 60_000)).toBe(true);
    expect(candles.at(-1)!.closeTime).toBeLessThan(Date.now() + 60_000);
    const unknown = await api.call('GET', '/v1/market/klines?symbol=DOGEUSDT&interval=1m', { token });
    expect(unknown.status).toBe(422);
    expect((await api.call('GET', '/v1/market/klines?symbol=BTCUSDT&interval=2m', { token })).status).toBe(400);
    expect((await api.call('GET', '/v1/market/klines?symbol=BTCUSDT&interval=1m')).status).toBe(401);
  });
});

describe('GET /v1/machines/me/events (server-sent events)', () => {
  test('the status at once, then every change: none → provisioning … → running → stopping … → stopped', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const client = createCloudExecutionClient({ baseUrl: api.url, getAccessToken: () => token });
    const seen: (string | null)[] = [];
    const tabs = [0, 1, 2].map(() => {
      const states: (MachineStatus | null)[] = [];
      const watch = client.watchMachine({ onStatus: (s) => states.push(s) });
      return { states, watch };
    });
    const latest = (i: number) => tabs[i]!.states.at(-1);
    await untilValue(
      'every tab to hear "no machine"',
      async () => tabs.map((t) => t.states.length),
      (n) => n.every((x) => x > 0),
    );
    expect(tabs.map((t) => t.states[0])).toEqual([null, null, null]);

    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    await untilValue(
      'the events to say running',
      async () => latest(0)?.state,
      (s) => s === 'running',
      {
        timeoutMs: 60_000,
      },
    );
    for (const s of tabs[0]!.states) if (seen.at(-1) !== (s?.state ?? null)) seen.push(s?.state ?? null);
    expect(seen[0]).toBeNull();
    expect(seen.at(-1)).toBe('running');
    expect(seen).toContain('provisioning');

    expect((await api.call('POST', '/v1/machines/me/stop', { token })).status).toBe(202);
    await untilValue(
      'every tab to say stopped',
      async () => tabs.map((_, i) => latest(i)?.state),
      (s) => s.every((x) => x === 'stopped'),
      { timeoutMs: 60_000 },
    );
    for (const t of tabs) t.watch.close();
  });

  test('no token: 401 (the watcher stops and says why); a token that expires ends the stream with `expired`', async () => {
    const refused = await api.call('GET', '/v1/machines/me/events');
    expect(refused.status).toBe(401);
    const userId = await api.createUser('elite');
    const token = await api.token(userId, { ttlSeconds: 2 });
    const res = await fetch(`${api.url}/v1/machines/me/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text(); // ends when the token expires
    expect(text).toContain('event: status\ndata: null');
    expect(text).toContain('event: expired');
  });
});
