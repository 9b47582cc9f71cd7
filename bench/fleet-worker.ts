import { NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createMachineWorker } from '../worker/create-worker';
import { quietRuntime } from './lib/infra';
import { stubActivities } from './lib/stub-activities';

/**
 * The fleet benchmark's worker, in its own process so its RSS is the worker's alone (Rust core, V8
 * isolate, cached workflows). Driven over IPC: it answers `stats` with memory and renewal counts.
 */
async function main() {
  quietRuntime();
  const { activities, counts } = stubActivities();
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_TEST_ADDRESS! });
  const worker = await createMachineWorker({
    connection,
    taskQueue: process.env.BENCH_TASK_QUEUE!,
    activities,
    maxCachedWorkflows: Number(process.env.BENCH_MAX_CACHED),
    workflowBundle: { codePath: process.env.BENCH_BUNDLE_PATH! } as WorkerOptions['workflowBundle'],
  });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stats') {
      const m = process.memoryUsage();
      const s = worker.getStatus();
      process.send?.({
        type: 'stats',
        rss: m.rss,
        heapUsed: m.heapUsed,
        renewals: counts.renewals,
        transitions: counts.transitions,
        cached: s.numCachedWorkflows,
      });
    }
    if (msg.type === 'stop') worker.shutdown();
  });
  await worker.run();
  await connection.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
