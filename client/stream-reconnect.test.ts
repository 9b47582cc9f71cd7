import WebSocket from 'ws';
import { createCloudStreamClient, type StopReason } from './stream';
import { sleep } from '../test/kit/wait';
import { FAST, soon, useStreamFixture, type StreamServer } from './test-support/stream-server';

jest.setTimeout(20_000);

// Reconnecting with backoff, and the closes and refusals that stop it for good; the rest is in stream.test.ts.
describe('stream client against a local ws server', () => {
  const fixture = useStreamFixture();
  const make = fixture.make;

  test('reconnects with backoff after drops and refusals, with a fresh token each time', async () => {
    let n = 0;
    const c = make({ token: () => `token-${++n}` });
    // Each scheduled delay: exponential in the attempt, capped, and jittered down by at most half.
    const delays: { attempt: number; delay: number }[] = [];
    c.on('connection', (h) => {
      if (h.state === 'reconnecting' && h.nextReconnectAt)
        delays.push({ attempt: h.reconnectAttempt, delay: h.nextReconnectAt - Date.now() });
    });
    c.connect();
    await soon('open', () => c.state === 'open');

    fixture.server.last().terminate(); // dropped without a close frame (1006)
    await soon('reconnected', () => c.getConnectionHealth().metrics.successfulConnections === 2);
    fixture.server.last().close(4502, 'unreachable'); // 4502: the machine is unreachable, worth retrying
    await soon('reconnected again', () => c.getConnectionHealth().metrics.successfulConnections === 3);

    // Refused upgrades (503) count as failed attempts and back off; the server comes back, so does the client.
    fixture.server.set('refuse503');
    fixture.server.last().terminate();
    await soon('three refusals', () => c.getConnectionHealth().metrics.failedConnections >= 3);
    const during = c.getConnectionHealth();
    expect(during.reconnectAttempt).toBeGreaterThanOrEqual(3);
    expect(['connecting', 'reconnecting']).toContain(during.state);
    fixture.server.set('accept');
    await soon('back', () => c.state === 'open', 5_000);
    await soon('hello after coming back', () => c.getConnectionHealth().reconnectAttempt === 0);

    const h = c.getConnectionHealth();
    expect(h.metrics.successfulConnections).toBe(4);
    expect(h.metrics.connectionAttempts).toBe(h.metrics.successfulConnections + h.metrics.failedConnections);
    expect(h.metrics.reconnections).toBe(h.metrics.connectionAttempts - 1);
    expect(h.metrics.messagesReceived).toBe(4); // one hello per connection
    expect(fixture.server.tokens).toEqual(fixture.server.tokens.map((_, i) => `token-${i + 1}`));
    expect(h.lastClose?.code).toBe(1006);
    expect(delays.length).toBeGreaterThanOrEqual(5);
    for (const { attempt, delay } of delays) {
      const base = Math.min(FAST.maxMs, FAST.initialMs * FAST.factor ** (attempt - 1));
      expect(delay).toBeLessThanOrEqual(base);
      expect(delay).toBeGreaterThanOrEqual(base * (1 - FAST.jitter) - 5);
    }
    expect(Math.max(...delays.map((d) => d.attempt))).toBeGreaterThanOrEqual(3);
  });

  test.each<[string, (s: StreamServer) => void, StopReason]>([
    ['4404 (no running machine)', (s) => s.last().close(4404, 'you have no running machine'), 'no_machine'],
    ['1001 (the machine stops)', (s) => s.last().close(1001, 'runtime stopping'), 'machine_stopped'],
    ['4503 (the machine went away)', (s) => s.last().close(4503, 'your machine went away'), 'machine_stopped'],
    ['4401 (token refused)', (s) => s.last().close(4401, 'token expired'), 'unauthorized'],
  ])('stops reconnecting on %s', async (_name, closeIt, reason) => {
    const c = make();
    c.connect();
    await soon('open', () => c.state === 'open');
    closeIt(fixture.server);
    await soon('closed', () => c.state === 'closed');
    await sleep(150);
    expect(c.getConnectionHealth()).toMatchObject({
      state: 'closed',
      stopReason: reason,
      nextReconnectAt: null,
      metrics: { connectionAttempts: 1, reconnections: 0 },
    });
  });

  test('stops on a token refused before the upgrade (401), and without a token', async () => {
    fixture.server.set('refuse401');
    const c = make();
    c.connect();
    await soon('closed', () => c.state === 'closed');
    await sleep(150);
    expect(c.getConnectionHealth()).toMatchObject({
      stopReason: 'unauthorized',
      metrics: { connectionAttempts: 1, failedConnections: 1, successfulConnections: 0 },
    });

    const noToken = createCloudStreamClient({ url: fixture.server.url, getAccessToken: () => null, WebSocket });
    noToken.connect();
    await soon('closed', () => noToken.state === 'closed');
    expect(noToken.getConnectionHealth()).toMatchObject({
      stopReason: 'unauthorized',
      metrics: { connectionAttempts: 0 },
    });
  });

  test('a handshake that fails without a status asks the probe (what browsers need)', async () => {
    fixture.server.set('hangup');
    let probed = 0;
    const c = make({ probe: async () => (++probed < 2 ? 'ok' : 'unauthorized') });
    c.connect();
    await soon('closed', () => c.state === 'closed');
    expect(probed).toBe(2); // the first "ok" retried, the second verdict stopped it
    expect(c.getConnectionHealth()).toMatchObject({ stopReason: 'unauthorized', metrics: { failedConnections: 2 } });
  });

  test('gives up after maxReconnectAttempts consecutive failures', async () => {
    fixture.server.set('refuse503');
    const c = fixture.adopt(
      createCloudStreamClient({
        url: fixture.server.url,
        getAccessToken: () => 't',
        WebSocket,
        backoff: FAST,
        maxReconnectAttempts: 2,
      }),
    );
    c.connect();
    await soon('closed', () => c.state === 'closed');
    expect(c.getConnectionHealth()).toMatchObject({ stopReason: 'max_attempts', metrics: { connectionAttempts: 3 } });
  });
});
