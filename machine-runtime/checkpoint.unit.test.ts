import pino from 'pino';
import type { Trader } from '../store/types';
import type { Candle } from './candles';
import { CheckpointKeeper, catchUpFrom, resumption, watermark } from './checkpoint';
import { TraderEngine, type Firing } from './engine';
import { createMetrics } from './metrics';
import { MemoryUserStore } from './test-support/memory-store';

const minute = 60_000;
const t0 = Date.parse('2024-10-03T00:00:00Z');

/** Deterministic 1m candles: a slow wave with noise (a seeded LCG), so filters hold for runs of candles. */
function candles(n: number): Candle[] {
  let seed = 42;
  const noise = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5) * 40;
  let prev = 60_000;
  return Array.from({ length: n }, (_, i) => {
    const close = 60_000 + 800 * Math.sin(i / 25) + noise();
    const c: Candle = {
      symbol: 'BTCUSDT',
      interval: '1m',
      openTime: t0 + i * minute,
      closeTime: t0 + (i + 1) * minute - 1,
      open: prev,
      high: Math.max(prev, close) + 5,
      low: Math.min(prev, close) - 5,
      close,
      volume: 10 + (i % 7),
    };
    prev = close;
    return c;
  });
}

const trader = (id: string, fireOn: 'change' | 'every', filter: unknown): Trader => ({
  id,
  userId: 'u',
  name: id,
  definition: { symbols: ['BTCUSDT'], interval: '1m', fireOn, filter },
  enabled: true,
  updatedAt: new Date(1_000),
});
const traders = [
  trader('above', 'change', {
    all: [{ left: { indicator: 'price' }, op: '>', right: { indicator: 'sma', period: 20 } }],
  }),
  trader('green', 'every', {
    all: [{ left: { indicator: 'price' }, op: '>', right: { indicator: 'price', field: 'open' } }],
  }),
];
const key = (f: Firing) => `${f.trader.id}@${f.candle.openTime}`;
const engineWith = (fired: Firing[]) => {
  const e = new TraderEngine({ onFire: (f) => fired.push(f), candleCapacity: 500 });
  e.setTraders(traders);
  return e;
};

describe('catch-up selection', () => {
  const cs = candles(10);
  const at = (i: number) => cs[i]!.openTime;
  const now = cs[9]!.closeTime + 1;

  test('the candles after the watermark fire; without a watermark or with no bound, none', () => {
    expect(catchUpFrom(cs, { watermark: at(6), now, maxMs: 3_600_000 })).toBe(7);
    expect(catchUpFrom(cs, { watermark: at(9), now, maxMs: 3_600_000 })).toBe(10);
    expect(catchUpFrom(cs, { watermark: at(0) - minute, now, maxMs: 3_600_000 })).toBe(0);
    expect(catchUpFrom(cs, { watermark: undefined, now, maxMs: 3_600_000 })).toBe(10);
    expect(catchUpFrom(cs, { watermark: at(2), now, maxMs: 0 })).toBe(10);
  });

  test('a missed close older than the bound is history: a machine down for a week fires nothing old', () => {
    // Closed within the last 3 minutes: candles 7, 8, 9 (close at 7:59.999 ≥ now − 3 min).
    expect(catchUpFrom(cs, { watermark: at(2), now, maxMs: 3 * minute })).toBe(7);
    expect(catchUpFrom(cs, { watermark: at(2), now: now + 7 * 24 * 3_600_000, maxMs: 3_600_000 })).toBe(10);
  });

  test('the watermark stops short of a firing not stored yet', () => {
    expect(watermark(at(9), undefined)).toBe(at(9));
    expect(watermark(at(9), at(7))).toBe(at(7) - 1);
    expect(watermark(at(5), at(7))).toBe(at(5));
    expect(watermark(undefined, at(7))).toBeUndefined();
  });

  test('only this machine’s checkpoint is resumed: another machine id means it was destroyed (a stop)', () => {
    const cp = { machineId: 'm1', streams: { 'BTCUSDT|1m': at(3) }, traders: { above: 1_000 } };
    expect(resumption(null, 'm1')).toEqual({ none: 'no checkpoint' });
    expect(resumption(cp, 'm2')).toEqual({ none: expect.stringMatching(/machine m1: started anew/) });
    expect(resumption({ ...cp, streams: { x: 'y' } }, 'm1')).toEqual({ none: 'checkpoint unreadable' });
    expect(resumption(cp, 'm1')).toEqual({
      streams: new Map([['BTCUSDT|1m', at(3)]]),
      traders: new Map([['above', 1_000]]),
    });
    expect('streams' in resumption({ ...cp, machineId: null }, null)).toBe(true);
  });
});

describe('engine rebuild and catch-up across a restart (pure)', () => {
  const all = candles(700);
  const warm = 300;

  /** The uninterrupted run: warm-up history silent, then every close evaluated. */
  function reference() {
    const fired: Firing[] = [];
    const e = engineWith(fired);
    e.onClosed(all.slice(0, warm), false);
    e.onClosed(all.slice(warm), true);
    return fired;
  }

  /** Dies after candle `kill`, its checkpoint at `lag` candles before; restarts when `restart` has closed. */
  function interrupted(kill: number, restart: number, lag: number, maxMs = 3_600_000) {
    const before: Firing[] = [];
    const first = engineWith(before);
    first.onClosed(all.slice(0, warm), false);
    first.onClosed(all.slice(warm, kill + 1), true);
    const checkpointAt = all[kill - lag]!.openTime;

    const after: Firing[] = [];
    const second = engineWith(after);
    const history = all.slice(restart + 1 - warm, restart + 1); // what REST's warm-up returns at the restart
    const from = catchUpFrom(history, { watermark: checkpointAt, now: all[restart]!.closeTime + 1, maxMs });
    const known = new Set(traders.map((t) => t.id));
    second.onClosed(history.slice(0, from), false);
    second.onClosed(history.slice(from), true, (t) => known.has(t.id));
    second.onClosed(all.slice(restart + 1), true);
    return { before, after };
  }

  /** A candle in the middle of a run of `above` being true, with the run going on past `restart`. */
  function trueRun(from: number, length: number): number {
    const fired = reference();
    const above = new Set(fired.filter((f) => f.trader.id === 'above').map((f) => f.candle.openTime));
    const sma = (i: number) => all.slice(i - 19, i + 1).reduce((s, c) => s + c.close, 0) / 20;
    for (let i = from; i < all.length - length; i++) {
      if (above.has(all[i]!.openTime) && all.slice(i, i + length).every((c, j) => c.close > sma(i + j))) return i;
    }
    throw new Error('no run of true candles in the generated data');
  }

  test('kill while a change filter is true: no second firing, and the closes missed while down fire once', () => {
    const edge = trueRun(warm + 20, 12);
    const kill = edge + 3;
    const restart = edge + 8;
    const { before, after } = interrupted(kill, restart, 2);
    const expected = reference().map(key);
    const stored = new Set([...before, ...after].map(key)); // the store's unique key
    expect([...stored].sort()).toEqual([...new Set(expected)].sort());
    // Nothing fired after the restart that the uninterrupted run did not fire.
    expect(after.filter((f) => !expected.includes(key(f)))).toEqual([]);
    // The change filter, true from `edge` to past the restart, fired once: before the kill.
    const onRun = [...before, ...after].filter(
      (f) => f.trader.id === 'above' && f.candle.openTime >= all[edge]!.openTime,
    );
    expect(onRun.filter((f) => f.candle.openTime <= all[restart]!.openTime).map(key)).toEqual([
      `above@${all[edge]!.openTime}`,
    ]);
    // Closes missed while down (kill+1 … restart) were evaluated, flagged replayed; so were the
    // two the checkpoint lagged behind (the store already had those: it drops them).
    const replayed = after.filter((f) => f.replayed);
    expect(replayed.length).toBeGreaterThan(0);
    for (const f of replayed) {
      expect(f.candle.openTime).toBeGreaterThan(all[kill - 2]!.openTime);
      expect(f.candle.openTime).toBeLessThanOrEqual(all[restart]!.openTime);
    }
    expect(after.filter((f) => !f.replayed).every((f) => f.candle.openTime > all[restart]!.openTime)).toBe(true);
  });

  test('down longer than the bound: the old closes rebuild the state silently and fire nothing', () => {
    const kill = warm + 50;
    const restart = warm + 150;
    const { before, after } = interrupted(kill, restart, 0, 10 * minute);
    const expected = new Set(reference().map(key));
    const missed = [...expected].filter((k) => {
      const t = Number(k.split('@')[1]);
      return t > all[kill]!.openTime && t <= all[restart]!.openTime;
    });
    const got = new Set([...before, ...after].map(key));
    // Exactly the missed closes older than 10 minutes are not caught up; everything else matches.
    const old = missed.filter((k) => Number(k.split('@')[1]) + minute - 1 < all[restart]!.closeTime + 1 - 10 * minute);
    expect(old.length).toBeGreaterThan(0);
    expect([...got].sort()).toEqual([...expected].filter((k) => !old.includes(k)).sort());
  });
});

describe('CheckpointKeeper', () => {
  const cs = candles(20);
  const loaded = [
    { id: 'above', updatedAt: 1_000 },
    { id: 'edited', updatedAt: 2_000 },
  ] as never;

  function keeper(store: MemoryUserStore, o: { machineId?: string; unstored?: number } = {}) {
    return new CheckpointKeeper({
      store,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      machineId: o.machineId ?? 'm1',
      clock: () => cs[19]!.closeTime + 1,
      catchUpMaxMs: 3_600_000,
      unstoredFrom: () => o.unstored,
      streams: () => ['BTCUSDT|1m'],
      traders: () => loaded,
      debounceMs: 60_000,
      restoreAttempts: 2,
      restoreRetryMs: 1,
    });
  }

  test('restores its own checkpoint once per stream; only unchanged traders may fire; writes on flush', async () => {
    const store = new MemoryUserStore('u');
    store.checkpoint = {
      userId: 'u',
      updatedAt: new Date(),
      machineId: 'm1',
      streams: { 'BTCUSDT|1m': cs[15]!.openTime },
      traders: { above: 1_000, edited: 1_500 },
    };
    const k = keeper(store, { unstored: cs[18]!.openTime });
    await k.restore();
    const plan = k.plan('BTCUSDT|1m', cs);
    expect(plan.from).toBe(16);
    expect([
      plan.mayFire({ id: 'above', updatedAt: 1_000 } as never),
      plan.mayFire({ id: 'edited', updatedAt: 2_000 } as never),
    ]).toEqual([true, false]);
    expect(k.plan('BTCUSDT|1m', cs).from).toBe(20); // used up: a later warm-up of the stream is a fresh one
    // Before anything is evaluated again, the restored watermark is what would be written.
    expect(k.snapshot().streams).toEqual({ 'BTCUSDT|1m': cs[15]!.openTime });
    k.evaluatedUpTo('BTCUSDT|1m', cs[19]!.openTime);
    await k.flush();
    expect(store.checkpoint).toMatchObject({
      machineId: 'm1',
      // Candle 18 fired a signal not stored yet: the watermark stays before it.
      streams: { 'BTCUSDT|1m': cs[18]!.openTime - 1 },
      traders: { above: 1_000, edited: 2_000 },
    });
    k.stop();
  });

  test('another machine’s checkpoint, or a store that cannot be read: a start without catch-up', async () => {
    const store = new MemoryUserStore('u');
    store.checkpoint = {
      userId: 'u',
      updatedAt: new Date(),
      machineId: 'm0',
      streams: { 'BTCUSDT|1m': 0 },
      traders: {},
    };
    const other = keeper(store);
    await other.restore();
    expect(other.plan('BTCUSDT|1m', cs).from).toBe(20);
    store.failing = true;
    const down = keeper(store, { machineId: 'm0' });
    await down.restore();
    expect(down.plan('BTCUSDT|1m', cs).from).toBe(20);
  });
});
