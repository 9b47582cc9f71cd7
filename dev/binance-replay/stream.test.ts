import { type BinanceReplay, createBinanceReplay } from './server';
import { Client, DATA_DIR, type KlineMsg, readCsv, T0 } from './test-helpers';
import { sleep } from '../../test/kit/wait';
import { testWithData } from '../../test/kit/data';

/** The WebSocket side: kline events, the control protocol, Binance's limits, ping/pong. */

let replay: BinanceReplay | undefined;
const clients: Client[] = [];
const client = (url: string, opts?: ConstructorParameters<typeof Client>[1]) => {
  const c = new Client(url, opts);
  clients.push(c);
  return c;
};

afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await replay?.close();
  replay = undefined;
});

testWithData(
  'a combined stream delivers updates then the exact recorded close, in time order, interleaved by time',
  async () => {
    replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: T0, symbols: ['BTCUSDT', 'ETHUSDT'] });
    const c = client(`${replay.wsUrl}/stream?streams=btcusdt@kline_5m/ethusdt@kline_5m`);
    await c.until(() => c.klines().length >= 60, 10_000, '60 klines');
    const msgs = c.klines().slice(0, 60);

    // One shared clock: event times never go back, across both streams.
    const times = msgs.map((m) => m.data.E);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(msgs.map((m) => m.stream))).toEqual(new Set(['btcusdt@kline_5m', 'ethusdt@kline_5m']));

    const csv = { BTCUSDT: readCsv('BTCUSDT', '5m'), ETHUSDT: readCsv('ETHUSDT', '5m') };
    const bySymbol = new Map<string, KlineMsg[]>();
    for (const m of msgs) bySymbol.set(m.data.s, [...(bySymbol.get(m.data.s) ?? []), m]);
    for (const [symbol, list] of bySymbol) {
      // Per candle: exactly 2 in-progress updates, then the close.
      let pending = 0;
      let closes = 0;
      let lastT = -1;
      for (const m of list) {
        const k = m.data.k;
        expect(m.stream).toBe(`${symbol.toLowerCase()}@kline_5m`);
        expect(k.s).toBe(symbol);
        expect(k.i).toBe('5m');
        expect(k.T).toBe(k.t + 5 * 60_000 - 1);
        expect(typeof k.o).toBe('string');
        expect(k.t).toBeGreaterThanOrEqual(lastT);
        lastT = k.t;
        const row = csv[symbol as keyof typeof csv].get(k.t);
        expect(row).toBeDefined();
        if (!row) continue;
        expect(Number(k.o)).toBe(row.open);
        if (!k.x) {
          pending++;
          expect(m.data.E).toBeLessThanOrEqual(k.T);
          expect(Number(k.h)).toBeLessThanOrEqual(row.high);
          expect(Number(k.l)).toBeGreaterThanOrEqual(row.low);
          expect(Number(k.v)).toBeLessThan(row.volume);
          continue;
        }
        expect(pending).toBe(2);
        pending = 0;
        closes++;
        expect(m.data.E).toBe(k.T + 1);
        expect([Number(k.o), Number(k.h), Number(k.l), Number(k.c), Number(k.v)]).toEqual([
          row.open,
          row.high,
          row.low,
          row.close,
          row.volume,
        ]);
        expect(k.L - k.f + 1).toBe(k.n);
      }
      expect(closes).toBeGreaterThanOrEqual(5);
    }
    // The first candle served is the one open at the start: the replay has no history over WS.
    expect(msgs[0]?.data.k.t).toBe(T0);
  },
);

testWithData('a raw /ws/<stream> connection gets unwrapped payloads', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: T0, symbols: ['ETHUSDT'] });
  const c = client(`${replay.wsUrl}/ws/ethusdt@kline_5m`);
  await c.until(() => c.frames.length >= 3);
  const first = JSON.parse(c.frames[0] as string) as KlineMsg['data'] & { stream?: string };
  expect(first.stream).toBeUndefined();
  expect(first.e).toBe('kline');
  expect(first.k.i).toBe('5m');
});

testWithData('SUBSCRIBE, LIST_SUBSCRIPTIONS and UNSUBSCRIBE work live', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 60 * 300, startTime: T0, symbols: ['BTCUSDT'] });
  const c = client(`${replay.wsUrl}/stream`);
  await c.opened();
  c.send({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m', 'btcusdt@kline_5m'], id: 1 });
  await c.until(() => c.klines().some((m) => m.stream === 'btcusdt@kline_5m' && m.data.k.x));
  expect(c.json()[0]).toEqual({ result: null, id: 1 });
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
  await c.until(() => c.frames.some((f) => f.includes('"id":2')));
  const list = c.json().find((m) => (m as { id?: number }).id === 2) as { result: string[] };
  expect(list.result.sort()).toEqual(['btcusdt@kline_1m', 'btcusdt@kline_5m']);

  c.send({ method: 'UNSUBSCRIBE', params: ['btcusdt@kline_1m'], id: 'abc' });
  await c.until(() => c.frames.some((f) => f === '{"result":null,"id":"abc"}'));
  const at = c.frames.indexOf('{"result":null,"id":"abc"}');
  await sleep(300);
  const after = c.frames.slice(at + 1).join('\n');
  expect(after).not.toContain('btcusdt@kline_1m');
  expect(after).toContain('btcusdt@kline_5m');
});

testWithData('a client subscribing mid-replay gets events from the current clock on, not history', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 60 * 300, startTime: T0, symbols: ['BTCUSDT'] });
  const a = client(`${replay.wsUrl}/stream?streams=btcusdt@kline_1m`);
  await a.until(() => a.klines().length >= 30);
  const clockAtJoin = replay.clock();
  expect(clockAtJoin).toBeGreaterThan(T0 + 5 * 60_000);
  const b = client(`${replay.wsUrl}/stream?streams=btcusdt@kline_1m`);
  await b.until(() => b.klines().length >= 3);
  const first = b.klines()[0] as KlineMsg;
  expect(first.data.E).toBeGreaterThan(clockAtJoin);
  expect(first.data.k.T).toBeGreaterThanOrEqual(clockAtJoin);
});

testWithData('invalid stream names get an error frame like Binance; the connection stays usable', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 60, startTime: T0, symbols: ['BTCUSDT'] });
  const c = client(`${replay.wsUrl}/stream`);
  await c.opened();
  c.send({ method: 'SUBSCRIBE', params: ['BTCUSDT@kline_1m'], id: 7 });
  c.send({ method: 'SUBSCRIBE', params: ['btcusdt@kline_7m'], id: 8 });
  c.send({ method: 'FROB', id: 9 });
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 10 });
  await c.until(() => c.frames.length >= 4);
  const [e7, e8, e9, list] = c.json() as Record<string, unknown>[];
  expect(e7).toEqual({ error: { code: 2, msg: 'Invalid request: invalid stream' }, id: 7 });
  expect(e8).toEqual({ error: { code: 2, msg: 'Invalid request: invalid stream' }, id: 8 });
  expect((e9?.error as { code: number }).code).toBe(2);
  expect(list).toEqual({ result: [], id: 10 });

  const bad = client(`${replay.wsUrl}/stream?streams=btcusdt@nonsense`);
  const closed = await bad.untilClosed();
  expect(bad.json()[0]).toEqual({ error: { code: 2, msg: 'Invalid request: invalid stream' }, id: null });
  expect(closed.code).toBe(1008);
});

testWithData('more than 1024 streams on one connection are refused', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 60, startTime: T0, symbols: ['BTCUSDT'] });
  const c = client(`${replay.wsUrl}/stream`);
  await c.opened();
  const params = Array.from({ length: 1025 }, (_, i) => `sym${i}usdt@kline_1m`);
  c.send({ method: 'SUBSCRIBE', params, id: 1 });
  await c.until(() => c.frames.length >= 1);
  expect((c.json()[0] as { error: { code: number } }).error.code).toBe(2);
  c.send({ method: 'SUBSCRIBE', params: params.slice(0, 1024), id: 2 });
  await c.until(() => c.frames.length >= 2);
  expect(c.json()[1]).toEqual({ result: null, id: 2 });
});

testWithData('more than 5 incoming messages in a second disconnects', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 60, startTime: T0, symbols: ['BTCUSDT'] });
  const c = client(`${replay.wsUrl}/stream`);
  await c.opened();
  for (let i = 1; i <= 5; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
  await c.until(() => c.frames.length >= 5);
  expect(c.closed).toBeUndefined();
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 6 });
  const closed = await c.untilClosed();
  expect(closed.code).toBe(1008);
  expect(c.frames).toHaveLength(5);
});

testWithData('the server pings, answers pings, and drops a client that does not pong', async () => {
  replay = await createBinanceReplay({
    dataDir: DATA_DIR,
    speed: 60,
    startTime: T0,
    symbols: ['BTCUSDT'],
    pingIntervalMs: 400, // pongs count toward the 5 messages/s limit: stay well under it
    pongTimeoutMs: 600,
  });
  const good = client(`${replay.wsUrl}/stream`);
  let pings = 0;
  good.ws.on('ping', () => pings++);
  await good.opened();
  const pong = new Promise<string>((resolve) => good.ws.once('pong', (d) => resolve(d.toString())));
  good.ws.ping('hello');
  expect(await pong).toBe('hello');

  const deaf = client(`${replay.wsUrl}/stream`, { autoPong: false });
  const closed = await deaf.untilClosed(3000);
  expect(closed.code).toBe(1006); // cut without a close frame
  expect(pings).toBeGreaterThanOrEqual(1);
  expect(good.closed).toBeUndefined();
  expect(replay.stats().connections).toBe(1);
});

testWithData('timeUnit=MICROSECOND switches times to microseconds', async () => {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: T0, symbols: ['ETHUSDT'] });
  const c = client(`${replay.wsUrl}/stream?streams=ethusdt@kline_5m&timeUnit=MICROSECOND`);
  await c.until(() => c.klines().length >= 1);
  expect(c.klines()[0]?.data.k.t).toBe(T0 * 1000);
});
