import { pluginCount, withTimeout } from './shared-limits';

describe('pluginCount (a shared counter hit as @fastify/rate-limit reads it)', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const resetAt = new Date(now + 42_500);

  test('an allowed hit reports the hits so far and the ms left in the window', () => {
    expect(pluginCount({ allowed: true, remaining: 7, resetAt }, 10, 60_000, now)).toEqual({ current: 3, ttl: 42_500 });
    expect(pluginCount({ allowed: true, remaining: 0, resetAt }, 10, 60_000, now)).toEqual({
      current: 10,
      ttl: 42_500,
    });
  });

  test('a refused hit is over max, whatever the counter holds', () => {
    expect(pluginCount({ allowed: false, remaining: 0, resetAt }, 10, 60_000, now).current).toBe(11);
  });

  test('the ttl stays within [0, window] when clocks disagree', () => {
    expect(pluginCount({ allowed: true, remaining: 1, resetAt: new Date(now - 5) }, 2, 60_000, now).ttl).toBe(0);
    expect(pluginCount({ allowed: true, remaining: 1, resetAt: new Date(now + 90_000) }, 2, 60_000, now).ttl).toBe(
      60_000,
    );
  });
});

describe('withTimeout', () => {
  test('passes an answer through, and rejects naming what did not answer in time', async () => {
    await expect(withTimeout(Promise.resolve(5), 50, 'x')).resolves.toBe(5);
    await expect(withTimeout(new Promise(() => undefined), 20, 'rate limit')).rejects.toThrow(
      'rate limit: no answer within 20 ms',
    );
  });
});
