import pino from 'pino';
import type { Firing } from './engine';
import { createMetrics } from './metrics';
import { TradeSignalSink, type TradeSignalMessage } from './trade-signals';
import { MemoryUserStore } from './test-support/memory-store';
import { until } from '../test/kit/wait';

const firing = (traderId: string, openTime: number, replayed?: boolean): Firing => ({
  trader: { id: traderId, name: traderId },
  candle: {
    symbol: 'BTCUSDT',
    interval: '1m',
    openTime,
    closeTime: openTime + 59_999,
    open: 1,
    high: 2,
    low: 1,
    close: 2,
    volume: 3,
  },
  values: {},
  replayed,
});

function sink(store: MemoryUserStore) {
  const sent: TradeSignalMessage[] = [];
  const metrics = createMetrics();
  const s = new TradeSignalSink({
    store,
    log: pino({ level: 'silent' }),
    metrics,
    broadcast: (m) => sent.push(m),
    retryBaseMs: 5,
    retryMaxMs: 10,
  });
  return { s, sent, metrics };
}

describe('trade-signal sink: browsers get each signal once across a restart', () => {
  test('a replayed firing the store already had is stored-as-duplicate and not sent; a new one is sent once stored', async () => {
    const store = new MemoryUserStore('u');
    await store.insertTradeSignal({
      traderId: 't',
      symbol: 'BTCUSDT',
      interval: '1m',
      candleOpenAt: new Date(60_000),
      payload: {},
    });
    const { s, sent, metrics } = sink(store);
    s.submit(firing('t', 60_000, true)); // the old process stored (and sent) it
    s.submit(firing('t', 120_000, true)); // closed while the machine was down: never sent
    s.submit(firing('t', 180_000)); // live: sent at once
    expect(await s.flush(2_000)).toBe(true);
    expect(sent.map((m) => m.candleOpenAt).sort()).toEqual(
      [new Date(120_000), new Date(180_000)].map((d) => d.toISOString()),
    );
    expect(store.signals).toHaveLength(3);
    expect((await metrics.registry.getSingleMetricAsString('runtime_signals_repeated_total')).trim()).toMatch(/ 1$/);
  });

  test('a firing not stored yet holds its stream’s watermark back until it is', async () => {
    const store = new MemoryUserStore('u');
    store.failing = true;
    const { s, sent } = sink(store);
    s.submit(firing('a', 240_000));
    s.submit(firing('b', 120_000, true));
    await until('queued', () => s.queued === 2, { timeoutMs: 2_000, everyMs: 5 });
    expect(s.unstoredFrom('BTCUSDT|1m')).toBe(120_000);
    expect(s.unstoredFrom('ETHUSDT|1m')).toBeUndefined();
    // Live ones are sent before storing; the replayed one waits for the store.
    expect(sent.map((m) => m.traderId)).toEqual(['a']);
    store.failing = false;
    expect(await s.flush(2_000)).toBe(true);
    expect(s.unstoredFrom('BTCUSDT|1m')).toBeUndefined();
    expect(sent.map((m) => m.traderId)).toEqual(['a', 'b']);
    s.stop();
  });
});
