import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SignalDefinition, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DEFAULT_UPTIME_POLICY, uptimeReport } from '../common/uptime-slo';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { createMachineStack, type MachineStack } from '../test/machine-stack';
import { quietInstant, timeSkippingServerPerTest } from '../test/kit/time-skipping';
import { until } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { createTimeSkippingEnv, quietBundlerLogger, uniqueId } from '../test/temporal';
import { machineLifecycle } from './machine-lifecycle';
import { monthReport } from '../test/uptime-report';
import {
  machineWorkflowId,
  paymentFailedSignal,
  statusQuery,
  stopSignal,
  tierChangedSignal,
  type LifecycleSettings,
  type MachineStatus,
} from './contract';

// A backstop only: every wait below is bounded and named, far inside it.
jest.setTimeout(420_000);

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/**
 * How far a signal or query keeps from every renewal (hourly) and other timer: far more than the renewals'
 * drift (each one's real time moves the later ones by that), and inside half an interval.
 */
const MARGIN = 20 * MIN;
type Cause = 'ours' | 'fly' | 'user' | 'billing';

/**
 * A simulated month of one machine on the time-skipping server, with real machine processes (fly-local) and a
 * real database, then the uptime ledger built from the database alone. Time moves by skipping; the test
 * waits for what the workflow did by reading its durable records (machine_events), never on a signal's answer.
 *
 * Signals and queries go at quiet instants only: right after a start, or 20 minutes or more from any renewal
 * (and the grace end). One that lands on the workflow task of a timer firing meanwhile wedges the run on this
 * server, and its time skipping with it (test/kit/time-skipping.ts says how); whole days from the start land
 * seconds before a renewal. Every call is bounded and named, and a stall says what the workflow was doing.
 */
describe('a month of one machine: the uptime ledger from the durable records', () => {
  const server = timeSkippingServerPerTest(createTimeSkippingEnv);
  let stack: MachineStack;
  let bundle: WorkflowBundleWithSourceMap;
  const failDir = mkdtempSync(join(tmpdir(), 'ce-health-'));

  beforeAll(async () => {
    // The runtime's own words for an idle feed (machine-runtime/health.ts), while the test's file exists.
    stack = await createMachineStack({
      machineEnv: { HEALTH_FAIL_DIR: failDir, HEALTH_FAIL_REASON: 'no evaluation for 310 s' },
    });
    bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(failDir, { recursive: true, force: true });
  });

  // Hourly renewals: the ledger's outages are exact to within one renewal interval (see the expectations).
  const settings: Partial<LifecycleSettings> = {
    activityHeartbeatSeconds: 3600, // this server may skip time while an activity runs
    renewalInterval: '1 hour',
    paymentGracePeriod: '3 days',
    startDeadlineSeconds: 30,
    healthDeadlineSeconds: 20,
    continueAsNewEvery: 50, // about every two days: the month spans a dozen runs
  };

  test('feed idle, machine gone, a user stop, an overdue payment and a downgrade: minutes per cause', async () => {
    const userId = await stack.db.createUser('elite');
    const taskQueue = uniqueId('month');
    const { client, nativeConnection } = server.env;
    const events = () => stack.db.store.listMachineEvents(userId, { limit: 500 });
    /**
     * Waits (in real time: nothing skips meanwhile) for the workflow's record of `what` after `since`; on a
     * stall the error says what the workflow was doing.
     */
    const recorded = async (
      handle: WorkflowHandle,
      what: string,
      since: number,
      test: (reason: string, status: string) => boolean,
    ) => {
      try {
        return await until(`the record of ${what}`, async () =>
          (await events()).find((e) => e.occurredAt.getTime() >= since && test(e.reason ?? '', e.toStatus)),
        );
      } catch (error) {
        if (error instanceof Error) error.message += `; ${await server.ts.explain(handle)}`;
        throw error;
      }
    };
    const truth: Record<Cause, [number, number][]> = { ours: [], fly: [], user: [], billing: [] };

    // --- quiet instants: the renewal grid as last read, and the other timers ------------------------------
    /** The workflow's renewals: hourly from the last one read (set by `start` and `statusAt`). */
    let renewals = { from: 0, every: HOUR };
    /** Other timers a message keeps away from: the grace end, once a payment failed. */
    const timers: number[] = [];
    const quiet = (notBefore: number) => quietInstant(notBefore, { grids: [renewals], instants: timers }, MARGIN);
    /** The first renewal at or after `t`, on the grid as last read. */
    const renewalFrom = (t: number) => renewals.from + Math.ceil((t - renewals.from) / HOUR) * HOUR;
    /** Skips to `instant`, given real time for the renewals on the way (each runs real activities). */
    const skipTo = async (what: string, instant: number, handle?: WorkflowHandle) => {
      const renewalsOnTheWay = Math.max(0, instant - (await server.ts.now())) / HOUR;
      await server.ts.skipTo(what, instant, { handle, timeoutMs: 30_000 + 500 * renewalsOnTheWay });
    };
    /** The status at the first quiet instant from `notBefore` on; the renewal grid is read from it. */
    const statusAt = async (handle: WorkflowHandle, when: string, notBefore: number): Promise<MachineStatus> => {
      await skipTo(when, quiet(Math.max(notBefore, await server.ts.now())), handle);
      const status = await server.ts.call(`the status ${when}`, () => handle.query(statusQuery), { handle });
      renewals = { from: Date.parse(status.lastRenewedAt!), every: HOUR };
      return status;
    };
    /**
     * The first renewal from `notBefore` on, exactly: read half an hour before it (mid-way between two
     * renewals), when the workflow's timer for it is already set from the renewal before.
     */
    const nextRenewal = async (handle: WorkflowHandle, what: string, notBefore: number) => {
      const status = await statusAt(handle, `half an hour before ${what}`, renewalFrom(notBefore) - 30 * MIN);
      return { at: renewalFrom(notBefore), status };
    };
    const send = <A extends unknown[]>(handle: WorkflowHandle, signal: SignalDefinition<A>, ...args: A) =>
      server.ts.call(`the ${signal.name} signal`, () => handle.signal(signal, ...args), { handle });

    const start = async () => {
      const handle = await server.ts.call('the workflow start', () =>
        client.workflow.start(machineLifecycle, {
          taskQueue,
          workflowId: machineWorkflowId(userId),
          args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
        }),
      );
      // Real activities take real time: poll without letting the server skip ahead.
      const running = await server.ts.call(
        'the workflow to be running',
        () => untilStatus(handle, 'running', (s) => s.state === 'running', 30_000),
        { handle, timeoutMs: 35_000 },
      );
      renewals = { from: Date.parse(running.lastRenewedAt!), every: HOUR };
      return handle;
    };
    /**
     * Half a minute after the first renewal from `notBefore` on (an outage starting now is one the next renewal
     * finds). Nothing is sent then (that renewal's workflow task may still be about): its status is read
     * half an hour before.
     */
    const justAfterRenewal = async (handle: WorkflowHandle, what: string, notBefore: number) => {
      const { at, status } = await nextRenewal(handle, what, notBefore);
      await skipTo(`half a minute after the renewal before ${what}`, at + 30_000, handle);
      return { renewal: at, status };
    };
    /**
     * At a quiet instant after a fault at `faultAt`: the renewal before it was the one at `renewal` (the fault is
     * the next one's to find); returns when that next renewal is due.
     */
    const findsAt = async (handle: WorkflowHandle, what: string, renewal: number, faultAt: number) => {
      const last = Date.parse((await statusAt(handle, `after ${what}`, faultAt)).lastRenewedAt!);
      expect(last).toBeGreaterThanOrEqual(renewal - 1000);
      expect(last).toBeLessThan(faultAt);
      return last + HOUR;
    };
    /**
     * Skips to a few seconds before `ms`, then lets real time run: what the workflow does then (a self-heal, a
     * stop) runs its activities while nothing skips. This server skips time while a long activity runs (to its
     * heartbeat timeout), and an activity timed out that way can leave its time skipping stuck.
     */
    const awakeAt = (handle: WorkflowHandle, what: string, ms: number) =>
      skipTo(`3 s before ${what}`, ms - 3000, handle);
    /**
     * Skips to the first instant from `notBefore` on that is 20 minutes past a renewal: a signal then never meets
     * a renewal's workflow task (this server fails such a task with "invalid history builder state for action",
     * and then hangs).
     */
    const quietMoment = async (handle: WorkflowHandle, what: string, notBefore: number) => {
      const { at } = await nextRenewal(handle, what, notBefore - 20 * MIN);
      await skipTo(what, quiet(at + 20 * MIN), handle); // quiet already: MARGIN past the renewal, 40 min before the next
    };
    const billing = async (type: 'payment.failed' | 'payment.recovered' | 'tier.changed', tier?: 'free') => {
      const e = { id: uniqueId('evt'), type, userId, occurredAt: new Date(await server.ts.now()).toISOString(), tier };
      // As the webhook does: record and apply (one transaction), then nudge the workflow if one runs.
      await stack.db.store.applyBillingEvent({ ...e, payload: e, gracePeriodMs: 3 * DAY });
      return { eventId: e.id, occurredAt: e.occurredAt };
    };
    const withWorker = async <T>(fn: () => Promise<T>) => {
      const worker = await createMachineWorker({
        connection: nativeConnection,
        taskQueue,
        activities: stack.activities,
        workflowBundle: bundle,
      });
      return worker.runUntil(fn());
    };

    const t0 = await server.ts.now();
    const stopAt = await withWorker(async () => {
      const h = await start();

      // Day 3: the feed goes idle 30 s after a renewal; the next one restarts the machine, which comes back healthy.
      const idle = await justAfterRenewal(h, 'the idle feed', t0 + 3 * DAY);
      const idleAt = await server.ts.now();
      writeFileSync(join(failDir, userId), '');
      const finds = await findsAt(h, 'the idle feed', idle.renewal, idleAt);
      await awakeAt(h, 'the renewal that finds the idle feed', finds);
      await recorded(h, 'the restart', idleAt, (r) => /^restart 1\/\d+: no evaluation/.test(r));
      rmSync(join(failDir, userId)); // the restarted runtime gets its feed back
      truth.ours.push([idleAt, await server.ts.now()]);
      await recorded(h, 'the recovery', idleAt, (r) => r === 'recovered');

      // Day 7: Fly loses the machine 30 s after a renewal; the next one replaces it.
      const loss = await justAfterRenewal(h, 'the machine loss', t0 + 7 * DAY);
      const gone = loss.status.machineId!;
      const goneAt = await server.ts.now();
      await stack.fly.deleteMachine(gone, { force: true });
      const replaces = await findsAt(h, 'the machine loss', loss.renewal, goneAt);
      await awakeAt(h, 'the renewal that replaces the machine', replaces);
      await recorded(h, 'the replacement', goneAt, (r) => r === 'recovered');
      truth.fly.push([goneAt, await server.ts.now()]);

      // Day 10: the user stops the machine; two days later they start it again.
      await quietMoment(h, 'the user stop', t0 + 10 * DAY);
      const stopAt = await server.ts.now();
      await send(h, stopSignal, { reason: 'user_requested', requestedBy: 'user' });
      await recorded(h, 'the stop', stopAt, (r, s) => s === 'stopped' && r === 'user_requested');
      await server.ts.untilClosed(h);
      return stopAt;
    });

    // Another worker (the first one is gone, and its cache with it) for the rest of the month.
    const handle = await withWorker(async () => {
      await skipTo('two days after the user stop', stopAt + 2 * DAY);
      truth.user.push([stopAt, await server.ts.now()]);
      const restarted = await start();

      // Day 14: a payment fails; the grace period (3 days) ends unpaid; a day later the payment recovers.
      await quietMoment(restarted, 'the payment failure', t0 + 14 * DAY);
      const failed = await billing('payment.failed');
      timers.push(Date.parse(failed.occurredAt) + 3 * DAY); // the grace end
      await send(restarted, paymentFailedSignal, failed);
      await recorded(restarted, 'the grace notice', Date.parse(failed.occurredAt), (r) =>
        r.startsWith('payment_failed'),
      );
      await awakeAt(restarted, 'the grace end', Date.parse(failed.occurredAt) + 3 * DAY);
      await recorded(
        restarted,
        'the overdue stop',
        Date.parse(failed.occurredAt),
        (r, s) => s === 'stopped' && r === 'payment_overdue',
      );
      await server.ts.untilClosed(restarted);
      await skipTo('the payment recovery', Date.parse(failed.occurredAt) + 4 * DAY);
      const recoveredAt = await server.ts.now();
      await billing('payment.recovered');
      truth.billing.push([Date.parse(failed.occurredAt) + 3 * DAY, recoveredAt]);
      // No workflow runs: the API's resumeAfterRecovery starts one, as here.
      const h = await start();

      // Day 29½: a downgrade stops the machine for the rest of the month.
      await quietMoment(h, 'the downgrade', t0 + 29.5 * DAY);
      const downgrade = await billing('tier.changed', 'free');
      await send(h, tierChangedSignal, { ...downgrade, tier: 'free' });
      await recorded(
        h,
        'the downgrade',
        Date.parse(downgrade.occurredAt),
        (r, s) => s === 'stopped' && r === 'downgraded',
      );
      await server.ts.untilClosed(h);
      truth.billing.push([Date.parse(downgrade.occurredAt), t0 + 30 * DAY]);
      await skipTo('the end of the month', t0 + 30 * DAY);
      return h;
    });
    expect((await server.ts.call('the last run', () => handle.describe(), { handle })).status.name).toBe('COMPLETED');

    // --- the ledger, from the database alone ----------------------------------------------------------------
    const end = t0 + 30 * DAY;
    const range = { from: new Date(t0).toISOString().slice(0, 10), to: new Date(end).toISOString().slice(0, 10) };
    const records = (
      await stack.db.store.uptimeRecords({
        userIds: [userId],
        from: new Date(Date.parse(range.from)),
        to: new Date(end),
      })
    ).get(userId)!;
    const report = uptimeReport(records, { ...range, now: end }, DEFAULT_UPTIME_POLICY);
    const minutes = (c: Cause) => truth[c].reduce((a, [x, y]) => a + (y - x), 0) / MIN;
    const expected = {
      ours: minutes('ours'),
      fly: minutes('fly'),
      user: minutes('user'),
      billing: minutes('billing'),
    };
    const tracked = (end - t0) / MIN;
    const healthy = tracked - expected.ours - expected.fly - expected.user - expected.billing;

    // Within two minutes of what happened: an outage is counted from the renewal before it was found (the
    // machine may have been sick since just after that check), here 30 s before the fault; a start and a
    // self-heal take a few seconds of real time each, ours; minutes are rounded per day and cause.
    const within = (actual: number, want: number) => expect(Math.abs(actual - want)).toBeLessThanOrEqual(2);
    const t = report.totals;
    within(t.down.ours, expected.ours);
    within(t.down.fly, expected.fly);
    within(t.down.user, expected.user);
    within(t.down.billing, expected.billing);
    within(t.healthyMinutes, healthy);
    within(t.entitledMinutes, tracked - expected.billing);
    expect(t.down.ours).toBeGreaterThanOrEqual(59);
    expect(t.down.fly).toBeGreaterThanOrEqual(59);
    within(t.down.user, 2 * 24 * 60);
    // Every whole day the machine was tracked adds up to 1440 minutes.
    for (const d of report.days.slice(1, -1))
      expect(d.healthyMinutes + d.down.ours + d.down.fly + d.down.user + d.down.billing).toBe(1440);
    // 2 hours ours + Fly of about 27½ days counted: above 99.5 %, nothing owed.
    expect(t.availabilityPercent!).toBeGreaterThan(99.5);
    expect(report.months.every((m) => m.creditPercent === 0)).toBe(true);

    const timeline = await stack.db.store.timeline(userId, { limit: 200 });
    const codes = new Set(timeline.entries.map((e) => `${e.kind}/${e.code}`));
    for (const c of [
      'lifecycle/start_requested',
      'lifecycle/healthy',
      'health/unhealthy:feed_idle',
      'health/recovered',
      'health/machine_gone',
      'lifecycle/user_requested',
      'billing/payment_failed',
      'lifecycle/payment_failed',
      'lifecycle/payment_overdue',
      'billing/payment_recovered',
      'billing/downgraded',
      'lifecycle/downgraded',
    ])
      expect(codes).toContain(c);
    // The sample for the issue note: the timeline and the month's ledger as tables.
    writeFileSync(join(tmpdir(), 'uptime-month.md'), monthReport({ timeline, report, expected, healthy }));
  });
});
