import WebSocket from 'ws';
import { createCloudWebSocketClient } from './compat';
import type { ConnectionHealth } from './stream';
import type { CandleMessage, HelloMessage, MetricsMessage, SignalMessage } from './schemas';
import { sleep } from '../test/kit/wait';
import { FAST, metricsFrame, soon, useStreamFixture } from './test-support/stream-server';

jest.setTimeout(20_000);

// Connecting, messages and the compat client; reconnects and stops are in stream-reconnect.test.ts.
describe('stream client against a local ws server', () => {
  const fixture = useStreamFixture();
  const make = fixture.make;

  test('connects with the bearer subprotocol, types messages, measures RTT from hello, counts frames', async () => {
    const c = make();
    const hellos: HelloMessage[] = [];
    const metrics: MetricsMessage[] = [];
    const raw: string[] = [];
    const states: ConnectionHealth['state'][] = [];
    c.on('hello', (m) => hellos.push(m));
    c.on('metrics', (m) => metrics.push(m));
    c.on('message', (text) => raw.push(text));
    c.on('connection', (h) => states.push(h.state));
    c.connect();
    await soon('hello', () => hellos.length === 1);
    expect(fixture.server.tokens).toEqual(['token-1']);
    expect(hellos[0]).toMatchObject({ traders: 2, streams: ['btcusdt@kline_1m'] });

    fixture.server.last().send(JSON.stringify(metricsFrame));
    fixture.server.last().send('not json');
    fixture.server.last().send(JSON.stringify({ type: 'future-message', x: 1 }));
    await soon('frames', () => raw.length === 4);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]!.heapUsedBytes).toBe(1234);

    expect(c.send({ ping: 1 })).toBe(true);
    expect(c.send('text')).toBe(true);
    await soon('server received', () => fixture.server.received.length === 2);
    expect(fixture.server.received).toEqual(['{"ping":1}', 'text']);

    const h = c.getConnectionHealth();
    expect(h).toMatchObject({
      state: 'open',
      isHealthy: true,
      roundTripSource: 'hello',
      stopReason: null,
      metrics: {
        connectionAttempts: 1,
        successfulConnections: 1,
        failedConnections: 0,
        messagesSent: 2,
        messagesReceived: 4,
        reconnections: 0,
      },
    });
    expect(h.roundTripMs).toBeGreaterThanOrEqual(0);
    expect(h.lastMessageAgeMs).toBeLessThan(1_000);
    expect(states.slice(0, 2)).toEqual(['connecting', 'open']);

    c.disconnect();
    expect(c.getConnectionHealth()).toMatchObject({ state: 'closed', stopReason: 'disconnected', isHealthy: false });
    expect(c.send('late')).toBe(false);
    await sleep(150);
    expect(c.getConnectionHealth().metrics.connectionAttempts).toBe(1); // no reconnect after disconnect()
  });

  test("batched `candles` / `signals` frames: on('candle') and on('signal') still see one item at a time", async () => {
    const c = make();
    const candle = (symbol: string) => ({
      symbol,
      interval: '1m',
      openTime: 60_000,
      closeTime: 119_999,
      open: 1,
      high: 2,
      low: 0.5,
      close: 1.5,
      volume: 10,
    });
    const signal = {
      traderId: 't1',
      traderName: 'rsi',
      symbol: 'ETHUSDT',
      interval: '1m',
      candleOpenAt: new Date(60_000).toISOString(),
      firedAt: new Date().toISOString(),
      payload: { close: 1.5 },
    };
    const batches: string[] = [];
    const candles: CandleMessage[] = [];
    const signals: SignalMessage[] = [];
    c.on('candles', (m) => batches.push(`candles:${m.candles.length}`));
    c.on('signals', (m) => batches.push(`signals:${m.signals.length}`));
    c.on('candle', (m) => candles.push(m));
    c.on('signal', (m) => signals.push(m));
    c.connect();
    await soon('open', () => c.state === 'open');
    fixture.server.last().send(JSON.stringify({ type: 'candles', candles: [candle('BTCUSDT'), candle('ETHUSDT')] }));
    fixture.server.last().send(JSON.stringify({ type: 'signals', signals: [signal] }));
    // A runtime from before batching: one frame per item.
    fixture.server.last().send(JSON.stringify({ type: 'candle', candle: candle('SOLUSDT') }));
    await soon('items', () => candles.length === 3 && signals.length === 1);
    expect(batches).toEqual(['candles:2', 'signals:1']);
    expect(candles.map((m) => [m.type, m.candle.symbol])).toEqual([
      ['candle', 'BTCUSDT'],
      ['candle', 'ETHUSDT'],
      ['candle', 'SOLUSDT'],
    ]);
    expect(signals[0]).toEqual({ type: 'signal', signal });
    expect(c.getConnectionHealth().metrics.messagesReceived).toBe(4); // frames, not items
  });

  test('the seed-shaped compat client: connect(machineId, websocketUrl, userId) resolves on open', async () => {
    const legacy = createCloudWebSocketClient({ getAccessToken: () => 'tok', WebSocket, backoff: FAST });
    const hellos: unknown[] = [];
    legacy.on('hello', (m) => hellos.push(m));
    await legacy.connect('ignored-machine-id', fixture.server.url, 'ignored-user-id');
    await soon('hello', () => hellos.length === 1);
    expect(legacy.getConnectionHealth()).toMatchObject({ state: 'open', metrics: { successfulConnections: 1 } });
    legacy.disconnect();

    fixture.server.set('refuse401');
    await expect(legacy.connect('m', fixture.server.url, 'u')).rejects.toThrow(/unauthorized/);
    legacy.disconnect();
  });
});
