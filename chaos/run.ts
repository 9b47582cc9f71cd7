import { execSync } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { createTestDatabase } from '../test/pg';
import { quietTemporalLogs } from '../test/temporal';
import { runChaos } from './chaos';
import type { ChaosOp } from './faults';
import { chaosTable } from './report';

/** A CLI's own output (stdout), not a log line. */
const say = (line: string) => process.stdout.write(`${line}\n`);
/**
 * `npm run chaos`: the full chaos suite. Knobs: CHAOS_SEED (default: from the clock, printed),
 * CHAOS_TRIALS (10), CHAOS_USERS (3). Prints the table and appends it to chaos/results.md.
 */
async function main() {
  const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
  const trials = Number(process.env.CHAOS_TRIALS ?? 10);
  const users = Number(process.env.CHAOS_USERS ?? 3);
  quietTemporalLogs();
  // The test harness's Postgres (a private cluster, migrated template); its Temporal is not used.
  await globalSetup();
  const db = await createTestDatabase();
  // Stopping the cluster at the end terminates idle connections (57P01): expected then, worth a line otherwise.
  db.pool.on('error', (err) => console.warn(`chaos: database connection closed: ${err.message}`));
  try {
    const summary = await runChaos({
      seed,
      trials,
      usersPerTrial: users,
      ops: ['provision', 'renewal', 'stop'] as ChaosOp[],
      flyLocalRestartChance: 0.35,
      temporalRestartChance: 0.3,
      faults: true,
      hangs: true,
      killWindowMs: 5000,
      convergeTimeoutMs: 300_000,
      database: db,
      log: (line) => say(line),
    });
    const table = chaosTable(summary);
    say(`\n${table}\n`);
    let commit = 'unknown';
    try {
      commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    } catch {
      // not a git checkout: the table still says when it ran
    }
    const file = join(__dirname, 'results.md');
    if (!existsSync(file)) appendFileSync(file, '# Chaos results\n\nAppended by `npm run chaos`.\n');
    appendFileSync(
      file,
      `\n## ${new Date().toISOString()} · commit ${commit} · CHAOS_SEED=${seed}\n\n${table}\n\n` +
        summary.results
          .map(
            (r) =>
              `- trial ${r.trial}: ${Object.entries(r.ops)
                .filter(([, n]) => n > 0)
                .map(([op, n]) => `${n} ${op}`)
                .join(
                  ', ',
                )}; kill +${r.killAfterMs} ms${r.disruptions.length ? ` + ${r.disruptions.join(' + ')}` : ''}; ` +
              `${r.converged ? `converged in ${((r.convergeMs ?? 0) / 1000).toFixed(1)} s` : 'not converged'}; ` +
              `outcomes ${r.outcomes.running} running / ${r.outcomes.stopped} stopped / ${r.outcomes.error} error; ` +
              `reconcile destroyed ${r.reconcile.destroyed}, repaired ${r.reconcile.repaired}, signalled ${r.reconcile.signalled}` +
              (r.violations.length ? `; violations: ${r.violations.join('; ')}` : ''),
          )
          .join('\n') +
        '\n',
    );
    say(`chaos: appended to ${file}`);
    process.exitCode =
      summary.converged === summary.trials && summary.duplicates === 0 && summary.orphansAfter === 0 ? 0 : 1;
  } finally {
    await db.drop();
    await globalTeardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
