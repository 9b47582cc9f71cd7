import { rmSync } from 'node:fs';
import { round8 } from './aggregate';
import { type BinanceReplay, createBinanceReplay, type ReplayOptions } from './server';
import { Client, type KlineMsg, syntheticDataDir, type SyntheticRow } from './test-helpers';
import { sleep, until } from '../../test/kit/wait';

/**
 * Loop mode on synthetic data (no recording needed): 1m candles from Tuesday 2024-01-02 21:00 to Friday 03:00 UTC.
 * No whole Monday-aligned week fits, so a lap is the two whole days in it, Jan 3 and 4 (2880 candles).
 */

const MIN = 60_000;
const FROM = Date.parse('2024-01-03T00:00:00Z'); // where a lap starts in the recording
const TO = Date.parse('2024-01-05T00:00:00Z'); // where lap 0 ends, and lap 1 begins
const PERIOD = TO - FROM;
const START = Date.parse('2024-01-02T21:00:00Z');
const { dir, rows } = syntheticDataDir('LOOPUSDT', '1m', MIN, START, 3 * 60 + 2 * 1440 + 3 * 60);
const row = new Map(rows.map((r) => [r.openTime, r]));
const rec = (t: number) => row.get(t) as SyntheticRow;
/** Lap k's price factor, computed here independently: the lap's last close over its first open, to the k. */
const ratio = rec(TO - MIN).close / rec(FROM).open;

let replay: BinanceReplay | undefined;
const clients: Client[] = [];

afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await replay?.close();
  replay = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(opts: Partial<ReplayOptions>, streams?: string): Promise<Client | undefined> {
  replay = await createBinanceReplay({ dataDir: dir, speed: 0, ...opts });
  if (!streams) return undefined;
  const c = new Client(`${replay.wsUrl}/stream?streams=${streams}`, undefined, 20_000);
  clients.push(c);
  return c;
}

async function get(path: string): Promise<unknown[][]> {
  const res = await fetch(`${replay?.restUrl}${path}`);
  expect(res.status).toBe(200);
  return (await res.json()) as unknown[][];
}

const closes = (c: Client, interval: string) => c.klines().filter((m) => m.data.k.x && m.data.k.i === interval);
/** Whether the latest frame is a close of `interval` opening at or after `t` (cheap: checked on every frame). */
const reached = (c: Client, interval: string, t: number) => () => {
  const k = (c.parsed[c.parsed.length - 1] as Partial<KlineMsg> | undefined)?.data?.k;
  return k !== undefined && k.x && k.i === interval && k.t >= t;
};
/** A WS kline as a REST row. */
const asRow = ({ data: { k } }: KlineMsg) => [k.t, k.o, k.h, k.l, k.c, k.v, k.T, k.q, k.n, k.V, k.Q, '0'];
/** Open times that do not follow on one interval each, or are off the interval's grid. */
const breaks = (times: number[], ms: number) =>
  times.filter((t, i) => t % ms !== 0 || (i > 0 && t - (times[i - 1] as number) !== ms));

test('at speed 0 a stream runs through two seams with no gap and no repeat; REST agrees with WS', async () => {
  const c = (await start({ loop: true, startTime: TO - 20 * MIN }, 'loopusdt@kline_1m/loopusdt@kline_5m')) as Client;
  const last = TO + PERIOD + 20 * MIN;
  await c.until(reached(c, '1m', last), 30_000, 'two seams');
  c.close();
  await until('the client to be gone', () => replay?.stats().connections === 0);

  const ones = closes(c, '1m').filter((m) => m.data.k.t <= last);
  const times = ones.map((m) => m.data.k.t);
  expect(times[0]).toBe(TO - 20 * MIN);
  expect(times).toHaveLength(20 + 2880 + 21);
  expect(breaks(times, MIN)).toEqual([]);
  expect(ones.filter((m) => m.data.k.T !== m.data.k.t + MIN - 1 || m.data.E !== m.data.k.T + 1)).toEqual([]);
  const events = c.klines().map((m) => m.data.E);
  expect(events).toEqual([...events].sort((a, b) => a - b));

  // Lap 0 is the recording; lap k the recording's two days again, k periods on, prices × ratio^k.
  const byT = new Map(ones.map((m) => [m.data.k.t, m.data.k]));
  const expectLap = (t: number, k: number) => {
    const r = rec(t - k * PERIOD);
    const f = Math.pow(ratio, k);
    const want = [r.open, r.high, r.low, r.close].map((p) => (k === 0 ? p : round8(p * f)));
    const got = byT.get(t);
    expect([t, got?.o, got?.h, got?.l, got?.c, got?.v]).toEqual([
      t,
      ...want.map((p) => p.toFixed(8)),
      r.volume.toFixed(8),
    ]);
  };
  expectLap(TO - MIN, 0);
  expectLap(TO, 1);
  expectLap(TO + 1234 * MIN, 1);
  expectLap(TO + PERIOD, 2);
  expectLap(last, 2);
  // The seams: the next lap opens where the last one closed.
  for (const seam of [TO, TO + PERIOD]) expect(byT.get(seam)?.o).toBe(byT.get(seam - MIN)?.c);

  // 5m, aggregated from the 1m, stays on its grid and equal to the five 1m candles it covers, across the seams.
  const fives = closes(c, '5m').filter((m) => m.data.k.t + 5 * MIN <= last);
  expect(fives[0]?.data.k.t).toBe(TO - 20 * MIN);
  expect(
    breaks(
      fives.map((m) => m.data.k.t),
      5 * MIN,
    ),
  ).toEqual([]);
  const mismatched = fives.filter(({ data: { k } }) => {
    const parts = [0, 1, 2, 3, 4].map((i) => byT.get(k.t + i * MIN));
    if (parts.some((p) => !p)) return true;
    const ps = parts as KlineMsg['data']['k'][];
    const hl = [Math.max(...ps.map((p) => Number(p.h))), Math.min(...ps.map((p) => Number(p.l)))];
    const volume = ps.reduce((s, p) => s + Number(p.v), 0);
    return (
      k.o !== ps[0]?.o ||
      k.c !== ps[4]?.c ||
      Number(k.h) !== hl[0] ||
      Number(k.l) !== hl[1] ||
      Math.abs(Number(k.v) - volume) > 1e-6
    );
  });
  expect(mismatched).toEqual([]);

  // REST across each seam: contiguous, and the very candles WS sent.
  const wsRows = new Map(ones.map((m) => [m.data.k.t, asRow(m)]));
  for (const seam of [TO, TO + PERIOD]) {
    const got = await get(`/api/v3/klines?symbol=LOOPUSDT&interval=1m&startTime=${seam - 10 * MIN}&limit=20`);
    expect(
      breaks(
        got.map((r) => r[0] as number),
        MIN,
      ),
    ).toEqual([]);
    expect(got).toEqual(got.map((r) => wsRows.get(r[0] as number)));
    expect(got[0]?.[0]).toBe(seam - 10 * MIN);
    const ranged = await get(
      `/api/v3/klines?symbol=LOOPUSDT&interval=1m&startTime=${seam - 3 * MIN}&endTime=${seam + 2 * MIN}`,
    );
    expect(ranged).toEqual(got.slice(7, 13));
    const ended = await get(`/api/v3/klines?symbol=LOOPUSDT&interval=1m&endTime=${seam + 2 * MIN}&limit=6`);
    expect(ended).toEqual(got.slice(7, 13));
  }
  const fiveRows = await get(`/api/v3/klines?symbol=LOOPUSDT&interval=5m&startTime=${TO - 20 * MIN}&limit=10`);
  expect(fiveRows).toEqual(fives.slice(0, 10).map(asRow));
  // Older laps and the recording itself are still there; the latest candles are the current lap's.
  const first = await get(`/api/v3/klines?symbol=LOOPUSDT&interval=1m&startTime=0&limit=2`);
  expect(first.map((r) => [r[0], Number(r[1]), Number(r[4])])).toEqual(
    rows.slice(0, 2).map((r) => [r.openTime, r.open, r.close]),
  );
  const clock = replay?.clock() as number;
  const latest = await get('/api/v3/klines?symbol=LOOPUSDT&interval=1m&limit=3');
  const top = latest[2] as unknown[];
  expect(top[0] as number).toBeLessThanOrEqual(clock);
  expect(top[6] as number).toBeGreaterThanOrEqual(clock);
  expect(top[0] as number).toBeGreaterThan(TO + PERIOD);
  expect(
    breaks(
      latest.map((r) => r[0] as number),
      MIN,
    ),
  ).toEqual([]);
});

test('with no one subscribed REST serves the laps up to the clock, wherever it starts', async () => {
  const at = TO + 10 * PERIOD + 300 * MIN; // lap 11, 300 minutes in
  await start({ loop: true, startTime: at });
  const rowsBack = await get('/api/v3/klines?symbol=LOOPUSDT&interval=1m&limit=1000');
  expect(rowsBack).toHaveLength(1000);
  expect(rowsBack[999]?.[0]).toBe(at);
  expect(
    breaks(
      rowsBack.map((r) => r[0] as number),
      MIN,
    ),
  ).toEqual([]);
  const seam = rowsBack.findIndex((r) => r[0] === TO + 10 * PERIOD);
  expect(seam).toBe(999 - 300);
  expect(rowsBack[seam]?.[1]).toBe(rowsBack[seam - 1]?.[4]);
  const hours = await get(`/api/v3/klines?symbol=LOOPUSDT&interval=1h&startTime=${TO + 9 * PERIOD}&limit=1000`);
  expect(hours).toHaveLength(48 + 5 + 1); // lap 10, then lap 11 up to the clock (the last one still open)
  expect(
    breaks(
      hours.map((r) => r[0] as number),
      3_600_000,
    ),
  ).toEqual([]);
  expect(await fetch(`${replay?.restUrl}/api/v3/time`).then((r) => r.json())).toEqual({ serverTime: at });
});

test('paced, with faults: the stream crosses a seam and every close still arrives', async () => {
  // A lap lasts 1.4 s of real time here; the clock runs from the start, so the first seam ahead is found below.
  const c = (await start(
    { loop: true, speed: 60 * 2000, updatesPerCandle: 0, startTime: TO - 3 * MIN, faults: { malformedEvery: 7 } },
    'loopusdt@kline_1m',
  )) as Client;
  await c.until(() => closes(c, '1m').length > 0, 30_000, 'a close');
  const first = closes(c, '1m')[0]?.data.k.t as number;
  const seam = TO + Math.max(0, Math.ceil((first + 5 * MIN - TO) / PERIOD)) * PERIOD; // 5 min ahead at least
  await c.until(reached(c, '1m', seam + 5 * MIN), 30_000, 'the seam');
  const times = closes(c, '1m').map((m) => m.data.k.t);
  expect(times.filter((t) => t > seam - 5 * MIN && t <= seam + 5 * MIN)).toHaveLength(10);
  expect(breaks(times, MIN)).toEqual([]);
  expect(c.parsed.filter((p) => p === undefined).length).toBeGreaterThan(0);
});

test('loop off (the default): the streams go quiet after the last recorded candle', async () => {
  const end = (rows[rows.length - 1] as SyntheticRow).openTime;
  const c = (await start({ startTime: end - 5 * MIN }, 'loopusdt@kline_1m')) as Client;
  await c.until(reached(c, '1m', end), 30_000, 'the last candle');
  await sleep(300);
  expect(closes(c, '1m').map((m) => m.data.k.t)).toEqual([0, 1, 2, 3, 4, 5].map((i) => end - 5 * MIN + i * MIN));
  expect(c.klines().filter((m) => m.data.k.t > end)).toEqual([]);
  expect(replay?.clock()).toBe(end + MIN);
  expect(replay?.laps('LOOPUSDT')).toBeUndefined();
  const latest = await get('/api/v3/klines?symbol=LOOPUSDT&interval=1m&limit=2');
  expect(latest.map((r) => r[0])).toEqual([end - MIN, end]);
});
