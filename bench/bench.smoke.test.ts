import { runFleet } from './fleet';
import { runHistory } from './history';
import { runOverhead } from './overhead';
import { runRuntime } from './runtime';
import { runStorm } from './storm';
import { testWithData } from '../test/kit/data';

/**
 * Keeps the benchmarks from rotting: each one's core function at a trivial size, on the run's real
 * Temporal and Postgres. Nothing here asserts on speed.
 */
describe('benchmarks at trivial size', () => {
  test('history: runs continue-as-new and are counted', async () => {
    const rows = await runHistory({
      days: 3,
      renewalInterval: '1 day',
      variants: [{ label: 'smoke', settings: { continueAsNewEvery: 1 } }],
    });
    expect(Number(rows[0]!.runs)).toBeGreaterThanOrEqual(2);
  }, 60_000);

  test('overhead: one provision per arm', async () => {
    const r = await runOverhead({ n: 1, warmup: 0 });
    expect(r.ratio).toBeGreaterThan(0);
  }, 60_000);

  test('storm: two machines downgraded and stopped', async () => {
    const rows = await runStorm({ sizes: [2] });
    expect(rows[0]!['live Fly machines after']).toBe(0);
  }, 90_000);

  test('fleet: three workflows at rest, one sweep', async () => {
    const rows = await runFleet({ sizes: [3], caches: [2], cleanup: true });
    expect(rows[0]!.workflows).toBe(3);
  }, 90_000);

  testWithData(
    'runtime: recorded kline frames through feed, engine and sockets',
    async () => {
      const r = await runRuntime({
        symbols: 3,
        traders: 2,
        clients: 2,
        minutes: 15,
        updates: 1,
        latencyBursts: 1,
        stepMs: 10,
        naiveCandles: 5,
      });
      expect(r.perCore).toBeGreaterThan(0);
      expect(r.delivered).toBeGreaterThan(0);
    },
    60_000,
  );
});
