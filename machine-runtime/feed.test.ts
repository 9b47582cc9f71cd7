import pino from 'pino';
import { createBinanceReplay, type BinanceReplay } from '../dev/binance-replay/server';
import type { Trader } from '../store/types';
import { intervalMs, streamKey, type Candle } from './candles';
import { TraderEngine, type Firing } from './engine';
import { BinanceFeed } from './feed';
import type { CandleSource } from './feed-streams';
import { sleep } from '../test/kit/wait';
import { createMetrics } from './metrics';
import { plainSma, readCsv } from './test-support/data';
import { recordedDataDir as dataDir, testWithData } from '../test/kit/data';
import { until } from '../test/kit/wait';

const log = pino({ level: process.env.TEST_LOG ?? 'silent' });
const fiveMin = 300_000;

const feeds: BinanceFeed[] = [];

function collectingFeed(replay: BinanceReplay, extra: Partial<ConstructorParameters<typeof BinanceFeed>[0]> = {}) {
  const seen = new Map<string, { candle: Candle; source: CandleSource }[]>();
  const feed = new BinanceFeed({
    wsUrl: replay.wsUrl,
    restUrl: replay.restUrl,
    clock: () => replay.clock(),
    log,
    metrics: createMetrics(),
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    staleMs: 1_000,
    warmupCandles: 100,
    restRetryBaseMs: 20,
    onClosed: (candles, source) => {
      for (const c of candles) {
        const key = streamKey(c.symbol, c.interval);
        seen.set(key, [...(seen.get(key) ?? []), { candle: c, source }]);
      }
    },
    ...extra,
  });
  feeds.push(feed);
  return { feed, seen };
}

/** Every stream's candles are consecutive: no gap, no repeat, in order. */
function expectContiguous(list: { candle: Candle }[], interval: string) {
  const ms = intervalMs(interval);
  for (let i = 1; i < list.length; i++) {
    expect(list[i]!.candle.openTime - list[i - 1]!.candle.openTime).toBe(ms);
  }
}

describe('Binance feed against the replay', () => {
  let replay: BinanceReplay | undefined;
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.stop();
    await replay?.close();
    replay = undefined;
  });

  testWithData(
    '20 forced disconnects, malformed frames, a stall and serverShutdown: every closed candle once, no duplicate signal',
    async () => {
      const btc = readCsv('BTCUSDT', '5m');
      const eth = readCsv('ETHUSDT', '5m');
      replay = await createBinanceReplay({
        dataDir,
        speed: 60_000, // 5 ms of real time per 5-minute candle
        startTime: btc[400]!.openTime,
        symbols: ['BTCUSDT', 'ETHUSDT'],
        faults: { malformedEvery: 53 },
      });
      const rp = replay;
      const firings: Firing[] = [];
      const engine = new TraderEngine({ onFire: (f) => firings.push(f) });
      const trader: Trader = {
        id: 't1',
        userId: 'u',
        name: 'cross',
        enabled: true,
        updatedAt: new Date(0),
        definition: {
          symbols: ['BTCUSDT', 'ETHUSDT'],
          interval: '5m',
          fireOn: 'every',
          filter: {
            all: [{ left: { indicator: 'price' }, op: 'crossesAbove', right: { indicator: 'sma', period: 20 } }],
          },
        },
      };
      engine.setTraders([trader]);
      const { feed, seen } = collectingFeed(rp, {
        maxStreamsPerConnection: 1, // two shards: one connection per stream
        onClosed: (candles, source) => {
          engine.onClosed(candles, source !== 'warmup');
          for (const c of candles) {
            const key = streamKey(c.symbol, c.interval);
            seen.set(key, [...(seen.get(key) ?? []), { candle: c, source }]);
          }
        },
      });
      feed.setStreams(engine.streams());
      await until('both shards connected', () => feed.status().connectedShards === 2 && feed.status().warmingUp === 0, {
        timeoutMs: 10_000,
        everyMs: 25,
      });
      expect(rp.stats().connections).toBe(2);

      for (let i = 0; i < 20; i++) {
        // Each drop hits live connections, so all 20 are real disconnects of both shards. The next drop
        // waits until both have come back (on a loaded box the close can be noticed late, and a drop
        // while the old sockets still look open would hit nothing).
        const before = feed.status().reconnects;
        await until('connected', () => feed.status().connected, { timeoutMs: 10_000, everyMs: 25 });
        await sleep(80);
        rp.dropAll();
        await until(
          'both shards reconnected',
          () => feed.status().reconnects >= before + 2 && feed.status().connected,
          { timeoutMs: 10_000, everyMs: 25 },
        );
      }
      await until('reconnected after drops', () => feed.status().reconnects >= 40 && feed.status().connected, {
        timeoutMs: 10_000,
        everyMs: 25,
      });
      rp.setFaults({ malformedEvery: 5 });
      await until('a malformed frame counted and skipped', () => feed.status().malformed > 0, {
        timeoutMs: 8_000,
        everyMs: 25,
      });
      rp.setFaults({ malformedEvery: 53, stallMs: 2_500 });
      await until('stall detected', () => feed.status().reconnects >= 42, { timeoutMs: 8_000, everyMs: 25 });
      rp.setFaults({ serverShutdownAfterMs: 50 });
      await until('serverShutdown handled', () => feed.status().reconnects >= 44 && feed.status().connected, {
        timeoutMs: 10_000,
        everyMs: 25,
      });
      await sleep(300);
      await feed.stop();

      const status = feed.status();
      expect(status.malformed).toBeGreaterThan(0);
      for (const [key, csv] of [
        ['BTCUSDT|5m', btc],
        ['ETHUSDT|5m', eth],
      ] as const) {
        const list = seen.get(key)!;
        expectContiguous(list, '5m');
        const live = list.filter((l) => l.source !== 'warmup');
        expect(live.length).toBeGreaterThan(300);
        expect(list.some((l) => l.source === 'backfill')).toBe(true);
        // The data is the recorded data, candle for candle.
        const byOpen = new Map(csv.map((c) => [c.openTime, c]));
        for (const { candle } of list) expect(candle.close).toBe(byOpen.get(candle.openTime)!.close);

        // Expected firings, computed from the raw CSV over exactly the evaluated candles.
        const closes = csv.map((c) => c.close);
        const sma = plainSma(closes, 20);
        const firstIdx = csv.findIndex((c) => c.openTime === live[0]!.candle.openTime);
        const lastIdx = csv.findIndex((c) => c.openTime === live.at(-1)!.candle.openTime);
        const expected: number[] = [];
        for (let i = firstIdx; i <= lastIdx; i++) {
          if (closes[i - 1]! <= sma[i - 1]! && closes[i]! > sma[i]!) expected.push(csv[i]!.openTime);
        }
        const got = firings.filter((f) => f.candle.symbol === key.split('|')[0]).map((f) => f.candle.openTime);
        expect(got).toEqual(expected);
        expect(new Set(got).size).toBe(got.length);
      }
      expect(status.reconnects).toBeGreaterThanOrEqual(44);
      // The engine's own guard never had to drop a candle: the feed delivered each once.
      expect(engine.stats.ignoredCandles).toBe(0);
      expect(Math.max(...feed.pendingSizes(), 0)).toBeLessThanOrEqual(500);
    },
  );

  testWithData(
    'live (un)subscribe on one connection within the rate limit; sharding past the per-connection cap',
    async () => {
      const btc = readCsv('BTCUSDT', '5m');
      replay = await createBinanceReplay({
        dataDir,
        speed: 30_000,
        startTime: btc[400]!.openTime,
        symbols: ['BTCUSDT', 'ETHUSDT'],
      });
      const rp = replay;
      const { feed, seen } = collectingFeed(rp, { maxStreamsPerConnection: 3, staleMs: 5_000 });
      feed.setStreams(['BTCUSDT|5m']);
      await until('first stream live', () => (seen.get('BTCUSDT|5m') ?? []).some((s) => s.source === 'live'), {
        timeoutMs: 10_000,
        everyMs: 25,
      });
      feed.setStreams(['BTCUSDT|5m', 'ETHUSDT|5m', 'BTCUSDT|1m']);
      await until(
        'new streams live',
        () => ['ETHUSDT|5m', 'BTCUSDT|1m'].every((k) => (seen.get(k) ?? []).some((s) => s.source === 'live')),
        { timeoutMs: 10_000, everyMs: 25 },
      );
      expect(feed.status()).toMatchObject({ shards: 1, reconnects: 0, streams: 3 });
      expect(rp.stats().connections).toBe(1);

      feed.setStreams(['BTCUSDT|5m', 'BTCUSDT|1m']);
      await sleep(400);
      const ethCount = seen.get('ETHUSDT|5m')!.length;
      await sleep(400);
      expect(seen.get('ETHUSDT|5m')!.length).toBe(ethCount);

      // A fourth and fifth stream exceed the cap of 3: a second connection opens. ETH starts afresh
      // (a new warm-up), so its earlier history is set aside.
      seen.delete('ETHUSDT|5m');
      feed.setStreams(['BTCUSDT|5m', 'BTCUSDT|1m', 'ETHUSDT|5m', 'ETHUSDT|15m', 'BTCUSDT|15m']);
      await until('second shard', () => feed.status().connectedShards === 2, { timeoutMs: 10_000, everyMs: 25 });
      expect(rp.stats().connections).toBe(2);
      expect(feed.status().reconnects).toBe(0);
      await feed.stop();
      for (const [key, list] of seen) expectContiguous(list, key.split('|')[1]!);
      expect(fiveMin).toBe(intervalMs('5m'));
    },
  );
});
