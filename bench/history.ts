import { bundleWorkflowCode } from '@temporalio/worker';
import { historyChain } from '../test/kit/histories';
import { createTimeSkippingEnv, quietBundlerLogger, uniqueId } from '../test/temporal';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { machineWorkflowId, statusQuery } from '../workflows/contract';
import type { LifecycleSettings } from '../workflows/contract';
import { lifecycleSettingsSchema } from '../workflows/schemas';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { runBenchmark } from './lib/infra';
import { envInt, median, report, type Row } from './lib/report';
import { stubActivities } from './lib/stub-activities';

/**
 * History events per run after a simulated stretch of renewals on the time-skipping server. Activities
 * are stubs (lib/stub-activities.ts): the events a run records do not depend on what an activity does,
 * only on how many the workflow schedules, and stubs let a year pass in seconds.
 */
export async function runHistory(opts: {
  days: number;
  renewalInterval: string;
  variants: { label: string; settings: Partial<LifecycleSettings> }[];
}): Promise<Row[]> {
  const env = await createTimeSkippingEnv();
  const rows: Row[] = [];
  try {
    const bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
    for (const variant of opts.variants) {
      const { activities, counts } = stubActivities();
      const taskQueue = uniqueId('bench-history');
      const worker = await createMachineWorker({
        connection: env.nativeConnection,
        taskQueue,
        activities,
        workflowBundle: bundle,
      });
      const userId = crypto.randomUUID();
      const settings = { renewalInterval: opts.renewalInterval, ...variant.settings };
      const started = Date.now();
      const lengths = await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(machineLifecycle, {
          taskQueue,
          workflowId: machineWorkflowId(userId),
          args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
        });
        await env.sleep(`${opts.days} days`);
        const status = await handle.query(statusQuery);
        if (status.state !== 'running') throw new Error(`workflow is ${status.state}, expected running`);
        const chain = await historyChain(env.client, handle.workflowId, handle.firstExecutionRunId);
        const lengths = chain.map((h) => h.events?.length ?? 0);
        await handle.terminate('benchmark finished');
        return lengths;
      });
      const full = lengths.slice(0, -1); // the last run is still open: only closed runs are whole
      const every = lifecycleSettingsSchema.parse(settings).continueAsNewEvery;
      // Whole chain over whole renewals: the first run's provisioning is a rounding error over a year.
      const perRenewal = lengths.reduce((a, b) => a + b, 0) / Math.max(1, counts.renewals);
      rows.push({
        variant: variant.label,
        renewalInterval: settings.renewalInterval,
        continueAsNewEvery: every,
        'simulated days': opts.days,
        renewals: counts.renewals,
        runs: lengths.length,
        'max events / run': Math.max(...lengths),
        'median events / closed run': full.length ? median(full) : 'no closed run',
        'events / renewal': perRenewal.toFixed(1),
        'renewals / closed run': full.length ? Math.round(median(full) / perRenewal) : 'n/a',
        'events in the open run': lengths[lengths.length - 1]!,
        'wall s': ((Date.now() - started) / 1000).toFixed(1),
      });
    }
  } finally {
    await env.teardown();
  }
  return rows;
}

runBenchmark(module, { postgres: false, temporal: false }, async (startLoad) => {
  const days = envInt('BENCH_DAYS', 365);
  const rows = await runHistory({
    days,
    renewalInterval: process.env.BENCH_RENEWAL_INTERVAL ?? '1 day',
    variants: [
      { label: 'DEFAULT settings', settings: {} },
      // Side by side: what the target needs (see README: events per renewal × N must stay under 2,000).
      { label: 'continueAsNewEvery 60', settings: { continueAsNewEvery: 60 } },
    ],
  });
  const defaults = rows[0]!;
  const max = Number(defaults['max events / run']);
  report('history', {
    title: 'history: events per run after a simulated year of renewals',
    startLoad,
    tables: [{ rows }],
    notes: [
      `Target ≤ 2,000 events per run with the DEFAULT settings: ${max <= 2000 ? 'met' : 'MISSED'} (${max}).`,
      'Time-skipping test server, stub activities (events do not depend on what an activity does).',
      'A run ends at continueAsNewEvery renewals or when the server suggests continue-as-new (about 4,096 events), whichever comes first; with the default (50) the count always comes first.',
      `Runs stay under 2,000 only with continueAsNewEvery ≤ 2,000 / events-per-renewal (≈ ${Math.floor(2000 / Number(rows[1]?.['events / renewal'] ?? 30))} here).`,
    ],
  });
});
