import { createTestDatabase, type TestDatabase } from '../test/pg';
import { quietTemporalLogs } from '../test/temporal';
import { runChaos } from './chaos';
import { chaosTable } from './report';

jest.setTimeout(240_000);

/**
 * The short chaos run inside `npm test` (the full one is `npm run chaos`): renewals only, so a
 * SIGKILL costs at most a 30-second activity timeout, with Fly faults and a restart of fly-local
 * and of the file-backed Temporal server. Asserts invariants, never timings.
 */
describe('chaos (short): SIGKILLed worker, Fly faults, fly-local and Temporal restarts', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    quietTemporalLogs();
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('every trial converges: one machine per running user, rows agree, no orphan after one reconcile', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? 1127);
    const lines: string[] = [];
    const summary = await runChaos({
      seed,
      trials: 1,
      usersPerTrial: 3,
      ops: ['renewal'],
      flyLocalRestartChance: 1,
      temporalRestartChance: 1,
      faults: true,
      hangs: false,
      killWindowMs: 3000,
      convergeTimeoutMs: 150_000,
      database: db,
      log: (line) => lines.push(line),
    });
    console.warn(`${lines.join('\n')}\n\n${chaosTable(summary)}`);
    expect(summary.results.map((r) => r.violations)).toEqual([[]]);
    expect(summary).toMatchObject({ trials: 1, converged: 1, duplicates: 0, orphansAfter: 0 });
  });
});
