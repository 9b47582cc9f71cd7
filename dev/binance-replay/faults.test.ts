import { type BinanceReplay, createBinanceReplay, type ReplayOptions } from './server';
import { Client, DATA_DIR, T0 } from './test-helpers';
import { sleep } from '../../test/kit/wait';
import { testWithData } from '../../test/kit/data';

/** Fault injection: what a consumer must survive. */

let replay: BinanceReplay | undefined;
const clients: Client[] = [];

afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await replay?.close();
  replay = undefined;
});

// ETHUSDT 5m: the smallest recorded file, so each test loads fast.
const STREAM = 'ethusdt@kline_5m';

async function start(extra: Partial<ReplayOptions>, streams = STREAM): Promise<Client> {
  replay = await createBinanceReplay({ dataDir: DATA_DIR, speed: 0, startTime: T0, symbols: ['ETHUSDT'], ...extra });
  const c = new Client(`${replay.wsUrl}/stream?streams=${streams}`);
  clients.push(c);
  return c;
}

testWithData('dropEvery cuts the connection abruptly after N messages, each time', async () => {
  const c = await start({ faults: { dropEvery: 5 } });
  const closed = await c.untilClosed();
  expect(closed.code).toBe(1006);
  expect(c.frames.length).toBeGreaterThanOrEqual(1);
  expect(c.frames.length).toBeLessThanOrEqual(5);
  const again = new Client(`${replay?.wsUrl}/stream?streams=${STREAM}`);
  clients.push(again);
  expect((await again.untilClosed()).code).toBe(1006);
  expect(again.frames.length).toBeLessThanOrEqual(5);
});

testWithData('malformedEvery sends a broken frame every N messages, the real events still all arrive', async () => {
  const c = await start({ faults: { malformedEvery: 3 } });
  await c.until(() => c.frames.length >= 40);
  const broken = c.frames.slice(0, 40).filter((f) => {
    try {
      JSON.parse(f);
      return false;
    } catch {
      return true;
    }
  });
  expect(broken.length).toBeGreaterThanOrEqual(9);
  // No close is lost: consecutive closes are one candle apart.
  const closes = c.klines().filter((m) => m.data.k.x);
  expect(closes.length).toBeGreaterThan(5);
  closes.slice(1).forEach((m, i) => expect(m.data.k.t - (closes[i]?.data.k.t ?? 0)).toBe(5 * 60_000));
});

testWithData('serverShutdown is announced like Binance, then the connection closes', async () => {
  const c = await start({ speed: 60, faults: { serverShutdownAfterMs: 200 } });
  const closed = await c.untilClosed();
  expect(closed.code).toBe(1001);
  const last = JSON.parse(c.frames.at(-1) as string) as { stream: string; data: { e: string; E: number } };
  expect(last.stream).toBe('!serverShutdown');
  expect(last.data.e).toBe('serverShutdown');
  expect(typeof last.data.E).toBe('number');
  expect(Object.keys(last.data)).toEqual(['e', 'E']);
});

testWithData('stallEvery pauses sending for stallMs, then resumes without losing events', async () => {
  const c = await start({ faults: { stallEvery: 10, stallMs: 400 } });
  await c.until(() => c.frames.length >= 15);
  const gap = (c.times[10] ?? 0) - (c.times[9] ?? 0);
  expect(gap).toBeGreaterThanOrEqual(350);
  const times = c.klines().map((m) => m.data.E);
  expect(times).toEqual([...times].sort((a, b) => a - b));
});

testWithData('setFaults({ stallMs }) stalls current connections once; dropAll cuts every connection', async () => {
  const c = await start({ speed: 60 * 3000 });
  await c.until(() => c.frames.length >= 5);
  // Long enough that a busy machine's late timers still look inside it (300 ms of 2 s).
  replay?.setFaults({ stallMs: 2000 });
  await sleep(20);
  const before = c.frames.length;
  await sleep(300);
  expect(c.frames.length).toBe(before);
  await c.until(() => c.frames.length > before + 5, 6000, 'the stall to end');

  const other = new Client(`${replay?.wsUrl}/stream?streams=ethusdt@kline_15m`);
  clients.push(other);
  await other.opened();
  expect(replay?.stats().connections).toBe(2);
  replay?.dropAll();
  expect((await c.untilClosed()).code).toBe(1006);
  expect((await other.untilClosed()).code).toBe(1006);
  const stats = replay?.stats();
  expect(stats?.connections).toBe(0);
  expect(stats?.closedCandlesSent).toBeGreaterThan(0);
  expect(stats?.messagesSent).toBeGreaterThan(stats?.closedCandlesSent ?? 0);
});
