import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../activities';
import { timeToNotice, type Detection } from '../test/kit/health-detection';
import { sleep } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { createMachineStack, TEST_IMAGE, TEST_JWT_SECRET } from '../test/machine-stack';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../test/temporal';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { durationSeconds } from '../worker/reconcile-schedule';
import { ensureHealthSweepSchedule } from '../worker/health-sweep-schedule';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineWorkflowId, stopUpdate } from '../workflows/contract';

/**
 * Detection time, as production runs it: the dev server (real time), fly-local machines running the fake runtime,
 * the worker's activities, the lifecycle's default settings (hourly renewals) and the health sweep Schedule at
 * `sweepInterval`. Each trial makes the running machine answer /health 503 at a random phase of the sweep and
 * times the workflow's `restart` record (test/kit/health-detection.ts; workflows/health-sweep.test.ts does one).
 */
export async function measureDetection(o: { trials: number; sweepInterval: string }): Promise<Detection[]> {
  const failDir = mkdtempSync(join(tmpdir(), 'ce-bench-detect-'));
  const server = await connectToTestServer();
  const stack = await createMachineStack({ machineEnv: { HEALTH_FAIL_DIR: failDir } });
  const taskQueue = uniqueId('bench-detect');
  try {
    const activities = createActivities({
      fly: stack.fly,
      store: stack.db.store,
      image: TEST_IMAGE,
      jwtSecret: TEST_JWT_SECRET,
      runtimeEnv: { BINANCE_WS_URL: 'ws://127.0.0.1:9', BINANCE_REST_URL: 'http://127.0.0.1:9' },
      temporal: { client: server.client, taskQueue },
    });
    const worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
    });
    return await worker.runUntil(async () => {
      const userId = await stack.db.createUser('elite');
      const handle = await server.client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: 'ams', cpuPriority: 'low' }], // the defaults: renewal every hour
      });
      await untilStatus(handle, 'running', (s) => s.state === 'running', 60_000);
      const schedule = await ensureHealthSweepSchedule(server.client, { taskQueue, interval: o.sweepInterval });
      const periodMs = durationSeconds(o.sweepInterval) * 1000;
      const results: Detection[] = [];
      try {
        for (let i = 0; i < o.trials; i++) {
          await sleep(Math.random() * periodMs); // a random phase of the sweep
          results.push(
            await timeToNotice({ store: stack.db.store, userId, failDir, timeoutMs: 5 * periodMs + 60_000 }),
          );
          await untilStatus(handle, 'running again', (s) => s.state === 'running', 60_000);
        }
      } finally {
        await server.client.schedule.getHandle(schedule.scheduleId).delete();
      }
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'benchmark finished', requestedBy: 'bench' }] });
      return results;
    });
  } finally {
    await stack.close();
    await server.close();
    rmSync(failDir, { recursive: true, force: true });
  }
}
