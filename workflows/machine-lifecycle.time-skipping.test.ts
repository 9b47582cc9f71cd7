import type { SignalDefinition, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { createMachineStack, liveMachinesOf, type MachineStack } from '../test/machine-stack';
import { historyChain } from '../test/kit/histories';
import { quietInstant, timeSkippingServerPerTest } from '../test/kit/time-skipping';
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

// A backstop only: every wait below is bounded and named, far inside it.
jest.setTimeout(180_000);

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

/**
 * Days and months of workflow time on the time-skipping test server; the activities still create
 * and probe real machine processes through fly-local.
 *
 * Signals and queries go at quiet moments only: right after the start, or an hour away from any renewal
 * (and grace end). One that lands on the workflow task of a timer firing meanwhile wedges the run on
 * this server, and its time skipping with it (test/kit/time-skipping.ts says how); a sleep of whole
 * days from the start lands exactly there, on the renewal of that day.
 */
describe('machineLifecycle over simulated days (time-skipping server)', () => {
  const server = timeSkippingServerPerTest(createTimeSkippingEnv);
  let stack: MachineStack;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    stack = await createMachineStack();
    bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = uniqueId('ts');
    const worker: Worker = await createMachineWorker({
      connection: server.env.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: bundle,
    });
    return worker.runUntil(fn(taskQueue));
  }

  const send = <A extends unknown[]>(handle: WorkflowHandle, signal: SignalDefinition<A>, ...args: A) =>
    server.ts.call(`the ${signal.name} signal`, () => handle.signal(signal, ...args), { handle });
  const status = (handle: WorkflowHandle, when: string) =>
    server.ts.call(`the status ${when}`, () => handle.query(statusQuery), { handle });
  /** At or after `notBefore`, an hour away from every renewal (`every` from `renewedAt` on) and from `also`. */
  const quiet = (notBefore: number, renewedAt: number, every = DAY, also: number[] = []) =>
    quietInstant(notBefore, { grids: [{ from: renewedAt, every }], instants: also }, HOUR);

  /**
   * Stop and wait for the cleanup, so no activity outlives this test's worker. A stop signal, not a
   * cancel: cancelling while a real-time activity runs makes this server answer the activity's cancel
   * with ACTIVITY_UNKNOWN now and then, and the next test's time skipping then hangs (seen on main too).
   * Cancellation itself is tested on the dev server (machine-lifecycle.test.ts). Sent at a quiet moment;
   * the cleanup runs in real time (nothing skips while its activities run), then the result is read.
   */
  async function stopAndWait(handle: WorkflowHandle) {
    await send(handle, stopSignal, { reason: 'test finished', requestedBy: 'test' });
    await server.ts.untilClosed(handle);
    expect(await server.ts.call('the result', () => handle.result(), { handle })).toMatchObject({ state: 'stopped' });
  }

  // This server skips time even while an activity runs: heartbeat timeouts long enough not to fire.
  const settings: Partial<LifecycleSettings> = {
    activityHeartbeatSeconds: 3600,
    renewalInterval: '1 day',
    paymentGracePeriod: '3 days',
    startDeadlineSeconds: 30,
    healthDeadlineSeconds: 20,
  };

  /** Started and running; `renewedAt` is where its renewals count from (its next timer is a renewal away). */
  async function startRunning(taskQueue: string, userId: string, s: Partial<LifecycleSettings> = settings) {
    const handle = await server.ts.call('the workflow start', () =>
      server.env.client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: 'ams', cpuPriority: 'low', settings: s }],
      }),
    );
    // Real activities take real time: poll without letting the server skip ahead.
    const running = await server.ts.call(
      'the workflow to be running',
      () => untilStatus(handle, 'running', (st) => st.state === 'running', 30_000),
      { handle, timeoutMs: 35_000 },
    );
    return { handle, renewedAt: Date.parse(running.lastRenewedAt!) };
  }

  test('payment failed: still running inside the grace period (across continue-as-new), stopped with "payment_overdue" after it', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      // A new run every renewal: each starts from the stored billing state, so none resets the grace period.
      const { handle, renewedAt } = await startRunning(taskQueue, userId, { ...settings, continueAsNewEvery: 1 });
      const failedAt = new Date(await server.ts.now()).toISOString();
      const graceEnd = Date.parse(failedAt) + 3 * DAY;
      await send(handle, paymentFailedSignal, { eventId: uniqueId('evt'), occurredAt: failedAt });
      // Two days (and two continue-as-news) in, an hour past that day's renewal.
      await server.ts.skipTo('two days in', quiet(Date.parse(failedAt) + 2 * DAY, renewedAt, DAY, [graceEnd]), {
        handle,
      });
      const during = await status(handle, 'two days in');
      expect(during.state).toBe('running');
      expect(Date.parse(during.paymentGraceEndsAt!)).toBe(graceEnd);
      expect(await liveMachinesOf(stack.fly, userId)).toHaveLength(1);
      // To 3 s before the grace end, then real time: the stop's activities run while nothing skips.
      await server.ts.skipTo('just before the grace end', graceEnd - 3000, { handle });
      await server.ts.untilClosed(handle);
      const result: MachineStatus = await server.ts.call('the result', () => handle.result(), { handle });
      expect(result).toMatchObject({ state: 'stopped', reason: 'payment_overdue' });
      expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
      const reasons = (await stack.db.store.listMachineEvents(userId)).map((e) => e.reason);
      expect(reasons).toContainEqual(expect.stringMatching(/^payment_failed: grace until/));
    });
  });

  test('payment recovered within the grace period: keeps running past it', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      const { handle, renewedAt } = await startRunning(taskQueue, userId);
      const t0 = await server.ts.now();
      await send(handle, paymentFailedSignal, { eventId: 'f1', occurredAt: new Date(t0).toISOString() });
      // A day in, an hour past that day's renewal: well inside the grace period.
      await server.ts.skipTo('a day in', quiet(t0 + DAY, renewedAt), { handle });
      const recoveredAt = await server.ts.now();
      await send(handle, paymentRecoveredSignal, { eventId: 'r1', occurredAt: new Date(recoveredAt).toISOString() });
      await server.ts.skipTo('five days later', quiet(recoveredAt + 5 * DAY, renewedAt), { handle });
      const st = await status(handle, 'past the grace period');
      expect(st).toMatchObject({ state: 'running', paymentGraceEndsAt: null });
      await stopAndWait(handle);
    });
  });

  test('billing events apply once each, whatever the order or how often they arrive', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      const { handle, renewedAt } = await startRunning(taskQueue, userId);
      const t0 = await server.ts.now();
      const failed = { eventId: 'evt-failed', occurredAt: new Date(t0).toISOString() };
      const recovered = { eventId: 'evt-recovered', occurredAt: new Date(t0 + 3_600_000).toISOString() };
      // The newer "recovered" arrives first, then the older "failed" — twice — then "recovered" again.
      await send(handle, paymentRecoveredSignal, recovered);
      await send(handle, paymentFailedSignal, failed);
      await send(handle, paymentFailedSignal, failed);
      await send(handle, paymentRecoveredSignal, recovered);
      expect((await status(handle, 'after the payment events')).paymentGraceEndsAt).toBeNull();
      // A replayed downgrade id changes nothing once applied; an older tier event after a newer one is ignored.
      await send(handle, tierChangedSignal, {
        eventId: 't-new',
        tier: 'elite',
        occurredAt: new Date(t0 + 7_200_000).toISOString(),
      });
      await send(handle, tierChangedSignal, {
        eventId: 't-old',
        tier: 'free',
        occurredAt: new Date(t0).toISOString(),
      });
      // Four days of renewals, to an hour past the fourth.
      await server.ts.skipTo('four days in', quiet(t0 + 4 * DAY, renewedAt), { handle });
      const st = await status(handle, 'four days in');
      expect(st).toMatchObject({ state: 'running', tier: 'elite', paymentGraceEndsAt: null });
      await stopAndWait(handle);
    });
  });

  test('a simulated year of renewals: every run stays under 2,000 history events, state intact across continue-as-new', async () => {
    const userId = await stack.db.createUser('elite');
    await withWorker(async (taskQueue) => {
      // Every two days (real activities take real time); runs are bounded by continueAsNewEvery, not by the interval.
      const every = 2 * DAY;
      const { handle, renewedAt } = await startRunning(taskQueue, userId, {
        ...settings,
        renewalInterval: '2 days',
        continueAsNewEvery: 15,
      });
      const first = await status(handle, 'after the start');
      await send(handle, paymentFailedSignal, {
        eventId: 'old-failure',
        occurredAt: new Date((await server.ts.now()) - 3_600_000).toISOString(),
      });
      await send(handle, paymentRecoveredSignal, {
        eventId: 'recovery',
        occurredAt: new Date(await server.ts.now()).toISOString(),
      });
      await server.ts.skipTo('a year later', quiet((await server.ts.now()) + 365 * DAY, renewedAt, every), {
        handle,
        timeoutMs: 150_000,
      });
      const after = await status(handle, 'a year later');
      expect(after).toMatchObject({
        state: 'running',
        machineId: first.machineId,
        userId,
        tier: 'elite',
        paymentGraceEndsAt: null,
      });
      expect(Date.parse(after.lastRenewedAt!) - Date.parse(first.lastRenewedAt!)).toBeGreaterThanOrEqual(362 * DAY);

      // Walk the chain of runs from the first: each one continued-as-new with a bounded history.
      const chain = await server.ts.call(
        'the chain of runs',
        () => historyChain(server.env.client, handle.workflowId, handle.firstExecutionRunId),
        { handle },
      );
      const lengths = chain.map((h) => h.events?.length ?? 0);
      expect(lengths.length).toBeGreaterThanOrEqual(12);
      expect(Math.max(...lengths)).toBeLessThan(2000);
      // A replayed event id from the first run is still known after a dozen continue-as-news.
      await send(handle, paymentFailedSignal, {
        eventId: 'old-failure',
        occurredAt: new Date(await server.ts.now()).toISOString(),
      });
      expect((await status(handle, 'after the replayed event')).paymentGraceEndsAt).toBeNull();
      await stopAndWait(handle);
    });
  });
});
