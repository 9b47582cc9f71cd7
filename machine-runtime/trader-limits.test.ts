import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { deriveMachineKey, mintMachineAccessToken } from '../common/credentials';
import { createBinanceReplay, type BinanceReplay } from '../dev/binance-replay/server';
import type { Trader } from '../store/types';
import { startMachineRuntime, type MachineRuntime } from './app';
import { TraderEngine } from './engine';
import { sleep } from './log';
import { createMetrics } from './metrics';
import { InvalidSymbolError, KlinesClient } from './rest';
import { readCsv } from './test-support/data';
import { recordedDataDir as dataDir, describeWithData } from '../test/kit/data';
import { MemoryUserStore } from './test-support/memory-store';
import {
  MAX_COMPILED_CONDITIONS,
  MAX_DEFINITION_BYTES,
  MAX_FILTER_DEPTH,
  MAX_FILTER_NODES,
  MAX_INDICATOR_INSTANCES,
  parseTraderDefinition,
} from './trader-schema';

const row = (name: string, definition: unknown, updatedAt = new Date(0)): Trader => ({
  id: name,
  userId: 'u',
  name,
  definition,
  enabled: true,
  updatedAt,
});
const rsiBelow = (period = 14) => ({ left: { indicator: 'rsi', period }, op: '<', right: 30 });
const good = { symbols: ['BTCUSDT'], interval: '5m', filter: { all: [rsiBelow()] } };

/** `depth` groups, each holding the next, built without recursion. */
function nested(depth: number) {
  let filter: unknown = { all: [rsiBelow()] };
  for (let i = 1; i < depth; i++) filter = { all: [filter] };
  return { symbols: ['BTCUSDT'], interval: '5m', filter };
}
/** Conditions in groups of 50 under one `any` (a second level when there are more than 2,500). */
function wide(conditions: unknown[]) {
  const groups: unknown[] = [];
  for (let i = 0; i < conditions.length; i += 50) groups.push({ all: conditions.slice(i, i + 50) });
  const top: unknown[] = [];
  for (let i = 0; i < groups.length; i += 50) top.push({ any: groups.slice(i, i + 50) });
  return { any: top };
}
const symbols = (n: number, prefix = 'S') => Array.from({ length: n }, (_, i) => `${prefix}${i}USDT`);
const engine = () => new TraderEngine({ onFire: () => undefined });

describe('bounds checked before parsing (one bad trader never blocks the others)', () => {
  test('485 nested groups (5 KB) are refused with the reason, not a RangeError; the good trader loads', () => {
    const deep = nested(485);
    expect(JSON.stringify(deep).length).toBeLessThan(6_000);
    const e = engine();
    const result = e.setTraders([row('deep', deep), row('good', good)]);
    expect(result.loaded).toBe(1);
    expect(result.invalid).toEqual([
      { id: 'deep', name: 'deep', error: expect.stringContaining(`more than ${MAX_FILTER_DEPTH} nested groups`) },
    ]);
    expect(e.streams()).toEqual(['BTCUSDT|5m']);
  });

  test('the depth bound holds at exactly 32 and for 100,000 levels (no recursion anywhere)', () => {
    expect(parseTraderDefinition(nested(MAX_FILTER_DEPTH)).success).toBe(true);
    const r = parseTraderDefinition(nested(MAX_FILTER_DEPTH + 1));
    expect(r).toEqual({ success: false, error: expect.stringContaining('nested groups') });
    expect(parseTraderDefinition(nested(100_000)).success).toBe(false);
    // Deep junk outside the filter is bounded too.
    let junk: unknown = 'BTCUSDT';
    for (let i = 0; i < 100_000; i++) junk = [junk];
    expect(parseTraderDefinition({ ...good, symbols: junk })).toEqual({
      success: false,
      error: expect.stringContaining('nested deeper'),
    });
  });

  test('more than 500 conditions and groups are refused, even under the size bound', () => {
    const many = wide(Array.from({ length: 550 }, (_, i) => ({ left: { indicator: 'volume' }, op: '>', right: i })));
    const def = { symbols: ['BTCUSDT'], interval: '5m', filter: many };
    expect(JSON.stringify(def).length).toBeLessThan(MAX_DEFINITION_BYTES);
    expect(parseTraderDefinition(def)).toEqual({
      success: false,
      error: expect.stringContaining(`more than ${MAX_FILTER_NODES} conditions and groups`),
    });
  });

  test('a 257 KB definition of distinct stdDev values is refused by size and creates no indicator', () => {
    const conditions = Array.from({ length: 2_600 }, (_, i) => ({
      left: { indicator: 'bollinger', period: 500, stdDev: 1 + i / 10_000, output: 'upper' },
      op: '>',
      right: 0,
    }));
    const big = { symbols: ['BTCUSDT'], interval: '5m', filter: wide(conditions) };
    expect(JSON.stringify(big).length).toBeGreaterThan(257_000);
    const e = engine();
    const result = e.setTraders([row('big', big), row('good', good)]);
    expect(result.invalid).toEqual([expect.objectContaining({ name: 'big', error: expect.stringContaining('bytes') })]);
    expect(e.streamState('BTCUSDT|5m')!.familyCount).toBe(1);
  });

  test('a cyclic or non-JSON value is refused, not walked forever', () => {
    const cyclic: Record<string, unknown> = { symbols: ['BTCUSDT'], interval: '5m' };
    cyclic.filter = { all: [cyclic] };
    expect(parseTraderDefinition(cyclic).success).toBe(false);
    expect(parseTraderDefinition({ ...good, extra: 10n }).success).toBe(false);
  });
});

describe('indicator instances per machine', () => {
  const instances = (n: number, prefix = 'S') => ({
    symbols: symbols(200, prefix),
    interval: '5m',
    filter: { any: Array.from({ length: n }, (_, i) => rsiBelow(10 + i)) },
  });

  test(`over ${MAX_INDICATOR_INSTANCES}, the traders that would exceed it are refused and the others run`, () => {
    const e = engine();
    const result = e.setTraders([
      row('a: 800 instances', instances(4)), // 200 symbols × rsi(10..13)
      row('b: 400 more', instances(2, 'T')),
      row('c: one more', good),
    ]);
    expect(result.loaded).toBe(2);
    expect(result.invalid).toEqual([
      {
        id: 'b: 400 more',
        name: 'b: 400 more',
        error: `needs 400 more indicator instances (symbol × interval × indicator settings); this machine holds at most ${MAX_INDICATOR_INSTANCES}; other traders use 800`,
      },
    ]);
    expect(e.streams()).toHaveLength(201);
  });

  test('a running trader keeps its instances: a new one that does not fit is the one refused', () => {
    const e = engine();
    const running = row('running', instances(4));
    expect(e.setTraders([running]).loaded).toBe(1);
    const result = e.setTraders([row('newcomer', instances(3, 'T'), new Date()), running]);
    expect(result.invalid.map((t) => t.name)).toEqual(['newcomer']);
    expect(e.traderCount()).toBe(1);
  });

  test('conditions compiled per machine (conditions × symbols) are bounded too', () => {
    const e = new TraderEngine({ onFire: () => undefined, limits: { maxCompiledConditions: 1_000 } });
    const same = (name: string) =>
      row(name, {
        symbols: symbols(200),
        interval: '5m',
        filter: { any: Array.from({ length: 3 }, () => rsiBelow()) },
      });
    const result = e.setTraders([same('first'), same('second')]);
    expect(result.invalid).toEqual([
      expect.objectContaining({ name: 'second', error: expect.stringContaining('600 conditions × symbols') }),
    ]);
    expect(MAX_COMPILED_CONDITIONS).toBeGreaterThanOrEqual(MAX_FILTER_NODES * 200);
  });
});

describeWithData('unknown symbols and the runtime (binance-replay)', () => {
  const jwtSecret = 'limits-test-jwt-secret-at-least-32-chars';
  const userId = randomUUID();
  let replay: BinanceReplay;
  let runtime: MachineRuntime;
  let store: MemoryUserStore;
  let base: string;

  beforeAll(async () => {
    const btc = readCsv('BTCUSDT', '5m');
    replay = await createBinanceReplay({ dataDir, speed: 600, startTime: btc[400]!.openTime, symbols: ['BTCUSDT'] });
    store = new MemoryUserStore(userId);
    store.addTrader('good', good);
    runtime = await startMachineRuntime({
      config: {
        userId,
        userToken: 'a.b.c',
        binanceWsUrl: replay.wsUrl,
        binanceRestUrl: replay.restUrl,
        tokenVerifySecret: deriveMachineKey(jwtSecret, userId),
        traderPollSeconds: 3600,
      },
      store,
      log: pino({ level: process.env.TEST_LOG ?? 'silent' }),
      clock: () => replay.clock(),
      options: { feed: { warmupCandles: 50, restRetryBaseMs: 20 } },
    });
    await runtime.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(runtime.app.server.address() as AddressInfo).port}`;
    await runtime.start();
  });
  afterAll(async () => {
    await runtime.stop();
    await replay.close();
  });

  const reload = async () => {
    const token = await mintMachineAccessToken({ jwtSecret, userId, purpose: 'control' });
    const res = await fetch(`${base}/control/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    return {
      status: res.status,
      body: (await res.json()) as { ok: boolean; traders: number; invalidTraders: unknown[] },
    };
  };
  const details = async () => {
    const token = await mintMachineAccessToken({ jwtSecret, userId, purpose: 'control' });
    const res = await fetch(`${base}/health`, { headers: { authorization: `Bearer ${token}` } });
    return (await res.json()) as { invalidTraders: { name: string; error: string }[]; feed: { warmingUp: number } };
  };

  test('KlinesClient: -1121 Invalid symbol is thrown at once, not retried', async () => {
    const metrics = createMetrics();
    const rest = new KlinesClient({ restUrl: replay.restUrl, log: pino({ level: 'silent' }), metrics, retryBaseMs: 1 });
    const attempt = rest.pageWithRetry({ symbol: 'NOPEUSDT', interval: '5m', limit: 10 });
    await expect(attempt).rejects.toBeInstanceOf(InvalidSymbolError);
    await expect(attempt).rejects.toThrow(/NOPEUSDT.*Invalid symbol/);
    expect(
      (await metrics.registry.getSingleMetricAsString('runtime_rest_requests_total')).match(/error"} (\d+)/)?.[1],
    ).toBe('1');
  });

  test('/control/reload reports the trader that does not parse and loads the rest', async () => {
    store.addTrader('deep', nested(485));
    const { status, body } = await reload();
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, traders: 1 });
    expect(body.invalidTraders).toEqual([expect.objectContaining({ name: 'deep' })]);
    expect((await details()).invalidTraders.map((t) => t.name)).toEqual(['deep']);
  });

  test('a symbol Binance does not know marks its trader invalid; REST is not asked again', async () => {
    const before = runtime.feed.status();
    store.addTrader('doge', { symbols: ['BTCUSDT', 'DOGEUSDT'], interval: '5m', filter: { all: [rsiBelow()] } });
    await reload();
    const deadline = Date.now() + 10_000;
    let invalid: { name: string; error: string }[] = [];
    while (Date.now() < deadline) {
      invalid = (await details()).invalidTraders;
      if (invalid.some((t) => t.name === 'doge')) break;
      await sleep(25);
    }
    expect(invalid.find((t) => t.name === 'doge')?.error).toMatch(/DOGEUSDT.*Invalid symbol/);
    expect(runtime.engine.streams()).toEqual(['BTCUSDT|5m']);
    const errors = async () =>
      Number(
        (await runtime.metrics.registry.getSingleMetricAsString('runtime_rest_requests_total')).match(
          /error"} (\d+)/,
        )?.[1] ?? 0,
      );
    const seen = await errors();
    await reload(); // the next poll does not ask Binance again
    await sleep(500);
    expect(await errors()).toBe(seen);
    expect(seen).toBeLessThanOrEqual(1);
    expect((await details()).feed.warmingUp).toBe(0);
    expect(runtime.feed.status().streams).toBe(before.streams);
  });
});
