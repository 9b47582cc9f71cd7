import { aggregate } from './aggregate';
import type { Candle, Interval } from './candles';
import { deriveMissing } from './csv';
import { lapFactor, type LapPlan, planLaps, timeline, type Timeline } from './laps';
import { syntheticRows } from './test-helpers';

/** Loop mode's index and time arithmetic (laps.ts), on in-memory candles. */

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

const candles = (intervalMs: number, interval: Interval, from: number, count: number): Candle[] =>
  syntheticRows(intervalMs, from, count).map((r) => deriveMissing(r, interval));

// Monday 2024-01-01 00:00 UTC, minus 2 h: a week and 5 h of 1m candles, so a whole Monday-aligned week fits.
const MONDAY = Date.parse('2024-01-01T00:00:00Z');
const week1m = candles(MIN, '1m', MONDAY - 2 * HOUR, 7 * 1440 + 5 * 60);
const weekPlan = planLaps(week1m, MIN) as LapPlan;

/** Candles at virtual indices [from, to). */
const range = (tl: Timeline, from: number, to: number): Candle[] =>
  Array.from({ length: to - from }, (_, i) => tl.at(from + i) as Candle);

test('the plan is the whole units of the recording: weeks from Monday, else days, else hours, else none', () => {
  expect(weekPlan).toMatchObject({ from: MONDAY, to: MONDAY + WEEK, period: WEEK, unit: WEEK });
  const first = week1m.find((c) => c.openTime === MONDAY) as Candle;
  const last = week1m.find((c) => c.openTime === MONDAY + WEEK - MIN) as Candle;
  expect(weekPlan.ratio).toBe(last.close / first.open);

  // Tuesday 21:00 to Friday 03:00: no whole week, two whole days.
  const tue = Date.parse('2024-01-02T21:00:00Z');
  expect(planLaps(candles(MIN, '1m', tue, 3 * 60 + 2 * 1440 + 3 * 60), MIN)).toMatchObject({
    from: tue + 3 * HOUR,
    to: tue + 3 * HOUR + 2 * DAY,
    unit: DAY,
  });
  expect(planLaps(candles(MIN, '1m', MONDAY + 30 * MIN, 90), MIN)).toMatchObject({
    from: MONDAY + HOUR,
    to: MONDAY + 2 * HOUR,
    unit: HOUR,
  });
  expect(planLaps(candles(MIN, '1m', MONDAY + 5 * MIN, 50), MIN)).toBeUndefined();
  expect(planLaps([], MIN)).toBeUndefined();
  // A unit must be a whole number of the recorded interval: 1w candles need whole weeks.
  expect(planLaps(candles(WEEK, '1w', MONDAY, 1), WEEK)).toMatchObject({ unit: WEEK, period: WEEK });
  expect(planLaps(candles(DAY, '1d', MONDAY, 3), DAY)).toMatchObject({ unit: DAY, period: 3 * DAY });
});

test('across the seams open times go on one interval at a time, aligned, and prices carry on', () => {
  const tl = timeline(week1m, '1m', weekPlan);
  const n0 = tl.lower(weekPlan.to);
  expect(n0).toBe(7 * 1440 + 2 * 60); // lap 0 ends where the plan does; the 3 h after it are not replayed
  const m = 7 * 1440;
  const seen = range(tl, 0, n0 + 3 * m + 10);
  const bad: unknown[] = [];
  const seams: number[] = [];
  for (let v = 1; v < seen.length; v++) {
    const [prev, c] = [seen[v - 1] as Candle, seen[v] as Candle];
    if (c.openTime - prev.openTime !== MIN || c.closeTime !== c.openTime + MIN - 1 || c.openTime % MIN !== 0) {
      bad.push({ v, prev, c });
    }
    if (tl.lapOf(v) !== tl.lapOf(v - 1)) {
      seams.push(v);
      // The seam: the next lap opens where the last one closed.
      expect(tl.lapOf(v)).toBe(tl.lapOf(v - 1) + 1);
      expect(c.open.toFixed(8)).toBe(prev.close.toFixed(8));
    }
  }
  expect(bad).toEqual([]);
  expect(seams).toEqual([n0, n0 + m, n0 + 2 * m, n0 + 3 * m]);
  expect([n0 - 1, n0, n0 + m - 1, n0 + m, n0 + 2 * m].map((v) => tl.lapOf(v))).toEqual([0, 1, 1, 2, 3]);
  expect(tl.at(-1)).toBeUndefined();
});

test('lap k is the recording shifted by k periods, prices scaled by ratio^k, volumes as recorded', () => {
  const tl = timeline(week1m, '1m', weekPlan);
  const n0 = tl.lower(weekPlan.to);
  const m = 7 * 1440;
  const a = week1m.findIndex((c) => c.openTime === weekPlan.from);
  for (const k of [1, 2, 5]) {
    for (const j of [0, 1, 777, m - 1]) {
      const rec = week1m[a + j] as Candle;
      const got = tl.at(n0 + (k - 1) * m + j) as Candle;
      const f = lapFactor(weekPlan, k);
      const px = (x: number) => Math.round(x * f * 1e8) / 1e8;
      expect(got).toEqual({
        ...rec,
        openTime: rec.openTime + k * WEEK,
        closeTime: rec.closeTime + k * WEEK,
        open: px(rec.open),
        high: px(rec.high),
        low: px(rec.low),
        close: px(rec.close),
        quoteVolume: Math.round(rec.quoteVolume * f * 1e8) / 1e8,
        takerBuyQuote: Math.round(rec.takerBuyQuote * f * 1e8) / 1e8,
      });
      expect(got.low).toBeLessThanOrEqual(Math.min(got.open, got.close));
      expect(got.high).toBeGreaterThanOrEqual(Math.max(got.open, got.close));
    }
  }
  expect(lapFactor(weekPlan, 0)).toBe(1);
  expect(lapFactor({ ...weekPlan, ratio: 2 }, 30)).toBe(1000);
  expect(lapFactor({ ...weekPlan, ratio: 0.5 }, 30)).toBe(0.001);
});

test('lower(t) finds the first candle opening at or after t, in any lap', () => {
  const tl = timeline(week1m, '1m', weekPlan);
  const { from, to } = weekPlan;
  const times = [
    -1,
    0,
    MONDAY - 3 * HOUR,
    MONDAY - 2 * HOUR,
    from - 1,
    from,
    from + 30_000,
    to - MIN,
    to - 1,
    to,
    to + 1,
    to + 2 * HOUR + 123,
    to + WEEK - 1,
    to + WEEK,
    to + 3 * WEEK + 5 * DAY + 17 * MIN + 1,
    to + 40 * WEEK,
  ];
  for (const t of times) {
    const v = tl.lower(t);
    expect([t, (tl.at(v) as Candle).openTime >= t]).toEqual([t, true]);
    if (v > 0) expect([t, (tl.at(v - 1) as Candle).openTime < t]).toEqual([t, true]);
  }
});

test('aggregated intervals stay aligned and consistent with the finer one across the seams', () => {
  const tl1 = timeline(week1m, '1m', weekPlan);
  for (const [interval, ms] of [
    ['5m', 5 * MIN],
    ['1h', HOUR],
    ['1d', DAY],
    ['1w', WEEK],
  ] as const) {
    const tl = timeline(aggregate(week1m, '1m', interval), interval, weekPlan);
    const start = tl.lower(weekPlan.to - 2 * ms);
    const end = tl.lower(weekPlan.to + 2 * WEEK + 3 * ms);
    expect(end - start).toBeGreaterThan(2);
    const bad: unknown[] = [];
    for (const c of range(tl, start, end)) {
      const parts = range(tl1, tl1.lower(c.openTime), tl1.lower(c.openTime + ms));
      const [head, tail] = [parts[0] as Candle, parts[parts.length - 1] as Candle];
      const want = [head.openTime, head.open, Math.max(...parts.map((p) => p.high))];
      want.push(Math.min(...parts.map((p) => p.low)), tail.close);
      const volume = parts.reduce((s, p) => s + p.volume, 0);
      if (
        (c.openTime - (interval === '1w' ? 4 * DAY : 0)) % ms !== 0 ||
        parts.length !== ms / MIN ||
        JSON.stringify([c.openTime, c.open, c.high, c.low, c.close]) !== JSON.stringify(want) ||
        Math.abs(c.volume - volume) > 1e-6
      ) {
        bad.push({ interval, c, want, volume });
      }
    }
    expect(bad).toEqual([]);
  }
});

test('trade ids keep growing by each candle trade count, across the seams', () => {
  const tl = timeline(week1m, '1m', weekPlan);
  const n0 = tl.lower(weekPlan.to);
  const m = 7 * 1440;
  expect(tl.firstTradeId(0)).toBe(1_000_000);
  for (const v of [1, n0 - 1, n0, n0 + 1, n0 + m - 1, n0 + m, n0 + 5 * m + 3]) {
    expect(tl.firstTradeId(v) - tl.firstTradeId(v - 1)).toBe((tl.at(v - 1) as Candle).trades);
  }
});

test('without a plan, and for intervals that do not divide the lap unit, the series ends as recorded', () => {
  const plain = timeline(week1m, '1m', undefined);
  expect(plain.at(week1m.length - 1)).toBe(week1m[week1m.length - 1]);
  expect(plain.at(week1m.length)).toBeUndefined();
  expect(plain.lower(Number.MAX_SAFE_INTEGER)).toBe(week1m.length);
  const threeDays = candles(3 * DAY, '3d', MONDAY, 4);
  const tl3d = timeline(threeDays, '3d', weekPlan);
  expect(tl3d.at(3)).toBe(threeDays[3]);
  expect(tl3d.at(4)).toBeUndefined();
  // Nothing recorded inside the plan: nothing to loop.
  const before = candles(MIN, '1m', MONDAY - 2 * HOUR, 60);
  expect(timeline(before, '1m', weekPlan).at(60)).toBeUndefined();
});
