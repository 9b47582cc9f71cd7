import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DEFAULT_UPTIME_POLICY, uptimeReport } from '../common/uptime-slo';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { createMachineStack, type MachineStack } from '../test/machine-stack';
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
} from './contract';

jest.setTimeout(420_000);

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
type Cause = 'ours' | 'fly' | 'user' | 'billing';

/**
 * A simulated month of one machine on the time-skipping server, with real machine processes (fly-local) and a
 * real database, then the uptime ledger built from the database alone. Time moves by `env.sleep`; the test
 * waits for what the workflow did by reading its durable records (machine_events), never on a signal's answer.
 */
describe('a month of one machine: the uptime ledger from the durable records', () => {
  let env: TestWorkflowEnvironment;
  let stack: MachineStack;
  let bundle: WorkflowBundleWithSourceMap;
  const failDir = mkdtempSync(join(tmpdir(), 'ce-health-'));

  beforeAll(async () => {
    env = await createTimeSkippingEnv();
    // The runtime's own words for an idle feed (machine-runtime/health.ts), while the test's file exists.
    stack = await createMachineStack({
      machineEnv: { HEALTH_FAIL_DIR: failDir, HEALTH_FAIL_REASON: 'no evaluation for 310 s' },
    });
    bundle = await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger });
  });
  afterAll(async () => {
    await stack?.close();
    await env?.teardown();
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
    const now = () => env.currentTimeMs();
    const sleepTo = async (ms: number) => {
      const wait = ms - (await now());
      if (wait > 0) await env.sleep(wait);
    };
    const events = () => stack.db.store.listMachineEvents(userId, { limit: 500 });
    /** Waits (in real time: nothing skips meanwhile) for the workflow's record of `what` after `since`. */
    const recorded = (what: string, since: number, test: (reason: string, status: string) => boolean) =>
      until(`the record of ${what}`, async () =>
        (await events()).find((e) => e.occurredAt.getTime() >= since && test(e.reason ?? '', e.toStatus)),
      );
    /** Before time skips on: a run still finishing when time jumps can leave this server's skipping stuck. */
    const closed = (handle: WorkflowHandle) =>
      until('the workflow to close', async () => (await handle.describe()).status.name !== 'RUNNING');
    const truth: Record<Cause, [number, number][]> = { ours: [], fly: [], user: [], billing: [] };

    const start = async () => {
      const handle = await env.client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
      });
      await untilStatus(handle, 'running', (s) => s.state === 'running', 30_000);
      return handle;
    };
    /**
     * Half a minute after the first renewal from `notBefore` on (an outage starting now is one the next renewal
     * finds); returns when that next renewal is due.
     */
    const justAfterRenewal = async (handle: WorkflowHandle, notBefore: number) => {
      await sleepTo(notBefore);
      const next = Date.parse((await handle.query(statusQuery)).lastRenewedAt!) + HOUR;
      await sleepTo(next + 30_000);
      await untilStatus(handle, 'the renewal', (s) => Date.parse(s.lastRenewedAt!) >= next - 1000, 10_000);
      return Date.parse((await handle.query(statusQuery)).lastRenewedAt!) + HOUR;
    };
    /**
     * Skips to a few seconds before `ms`, then lets real time run: what the workflow does then (a self-heal, a
     * stop) runs its activities while nothing skips. This server skips time while a long activity runs (to its
     * heartbeat timeout), and an activity timed out that way can leave its time skipping stuck.
     */
    const awakeAt = (ms: number) => sleepTo(ms - 3000);
    /**
     * Skips to 20 minutes after a renewal, from `notBefore` on: a signal then never meets a renewal's workflow
     * task (this server fails such a task with "invalid history builder state for action", and then hangs).
     */
    const quietMoment = async (handle: WorkflowHandle, notBefore: number) => {
      await sleepTo(notBefore);
      const last = Date.parse((await handle.query(statusQuery)).lastRenewedAt!);
      const at = last + 20 * MIN > (await now()) ? last + 20 * MIN : last + HOUR + 20 * MIN;
      await sleepTo(at);
    };
    const billing = async (type: 'payment.failed' | 'payment.recovered' | 'tier.changed', tier?: 'free') => {
      const e = { id: uniqueId('evt'), type, userId, occurredAt: new Date(await now()).toISOString(), tier };
      // As the webhook does: record and apply (one transaction), then nudge the workflow if one runs.
      await stack.db.store.applyBillingEvent({ ...e, payload: e, gracePeriodMs: 3 * DAY });
      return { eventId: e.id, occurredAt: e.occurredAt };
    };
    const withWorker = async <T>(fn: () => Promise<T>) => {
      const worker = await createMachineWorker({
        connection: env.nativeConnection,
        taskQueue,
        activities: stack.activities,
        workflowBundle: bundle,
      });
      return worker.runUntil(fn());
    };

    const t0 = await now();
    const stopAt = await withWorker(async () => {
      const h = await start();

      // Day 3: the feed goes idle 30 s after a renewal; the next one restarts the machine, which comes back healthy.
      const finds = await justAfterRenewal(h, t0 + 3 * DAY);
      const idleAt = await now();
      writeFileSync(join(failDir, userId), '');
      await awakeAt(finds);
      await recorded('the restart', idleAt, (r) => /^restart 1\/\d+: no evaluation/.test(r));
      rmSync(join(failDir, userId)); // the restarted runtime gets its feed back
      truth.ours.push([idleAt, await now()]);
      await recorded('the recovery', idleAt, (r) => r === 'recovered');

      // Day 7: Fly loses the machine 30 s after a renewal; the next one replaces it.
      const replaces = await justAfterRenewal(h, t0 + 7 * DAY);
      const gone = (await h.query(statusQuery)).machineId!;
      const goneAt = await now();
      await stack.fly.deleteMachine(gone, { force: true });
      await awakeAt(replaces);
      await recorded('the replacement', goneAt, (r) => r === 'recovered');
      truth.fly.push([goneAt, await now()]);

      // Day 10: the user stops the machine; two days later they start it again.
      await quietMoment(h, t0 + 10 * DAY);
      const stopAt = await now();
      await h.signal(stopSignal, { reason: 'user_requested', requestedBy: 'user' });
      await recorded('the stop', stopAt, (r, s) => s === 'stopped' && r === 'user_requested');
      await closed(h);
      return stopAt;
    });

    // Another worker (the first one is gone, and its cache with it) for the rest of the month.
    const handle = await withWorker(async () => {
      await sleepTo(stopAt + 2 * DAY);
      truth.user.push([stopAt, await now()]);
      const restarted = await start();

      // Day 14: a payment fails; the grace period (3 days) ends unpaid; a day later the payment recovers.
      await quietMoment(restarted, t0 + 14 * DAY);
      const failed = await billing('payment.failed');
      await restarted.signal(paymentFailedSignal, failed);
      await recorded('the grace notice', Date.parse(failed.occurredAt), (r) => r.startsWith('payment_failed'));
      await awakeAt(Date.parse(failed.occurredAt) + 3 * DAY);
      await recorded(
        'the overdue stop',
        Date.parse(failed.occurredAt),
        (r, s) => s === 'stopped' && r === 'payment_overdue',
      );
      await closed(restarted);
      await sleepTo(Date.parse(failed.occurredAt) + 4 * DAY);
      const recoveredAt = await now();
      await billing('payment.recovered');
      truth.billing.push([Date.parse(failed.occurredAt) + 3 * DAY, recoveredAt]);
      // No workflow runs: the API's resumeAfterRecovery starts one, as here.
      const h = await start();

      // Day 29½: a downgrade stops the machine for the rest of the month.
      await quietMoment(h, t0 + 29.5 * DAY);
      const downgrade = await billing('tier.changed', 'free');
      await h.signal(tierChangedSignal, { ...downgrade, tier: 'free' });
      await recorded(
        'the downgrade',
        Date.parse(downgrade.occurredAt),
        (r, s) => s === 'stopped' && r === 'downgraded',
      );
      await closed(h);
      truth.billing.push([Date.parse(downgrade.occurredAt), t0 + 30 * DAY]);
      await sleepTo(t0 + 30 * DAY);
      return h;
    });
    expect((await handle.describe()).status.name).toBe('COMPLETED');

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
