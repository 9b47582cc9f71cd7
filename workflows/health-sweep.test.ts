import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { timeToNotice } from '../test/kit/health-detection';
import { uniqueId } from '../test/temporal';
import { until } from '../test/kit/wait';
import { saveHistoryIfRecording } from '../test/kit/histories';
import { untilStatus } from '../test/kit/workflow-status';
import { ensureHealthSweepSchedule, HEALTH_SWEEP_DEFAULT_INTERVAL } from '../worker/health-sweep-schedule';
import { machineSickSignal, machineWorkflowId, stopUpdate, type LifecycleSettings } from './contract';
import { healthSweep } from './health-sweep';

jest.setTimeout(120_000);

const failDir = mkdtempSync(join(tmpdir(), 'ce-sweep-'));
// Hourly renewals, as in production: only the sweep can notice a sickness within these tests.
const settings: Partial<LifecycleSettings> = {
  renewalInterval: '1 hour',
  startDeadlineSeconds: 30,
  healthDeadlineSeconds: 20,
  maxRestarts: 1,
};

describe('the fleet health sweep (real dev server, fly-local machines)', () => {
  const h = useLifecycleWorker({
    prefix: 'sweep',
    reconcile: true, // wires the Temporal client the sweep signals with
    machineEnv: { HEALTH_FAIL_DIR: failDir },
    defaults: settings,
  });
  afterAll(() => rmSync(failDir, { recursive: true, force: true }));

  const running = async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await h.start(userId);
    const status = await h.waitForState(handle, 'running');
    return { userId, handle, status, machineId: status.machineId! };
  };
  const stop = (handle: Awaited<ReturnType<typeof running>>['handle']) =>
    handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  const restarts = async (userId: string) =>
    (await h.eventsOf(userId)).filter(([, reason]) => reason?.startsWith('restart')).length;

  test('one sweep checks every running machine and signals only the sick one, whose workflow heals it', async () => {
    const [well, sick] = [await running(), await running()];
    writeFileSync(join(failDir, sick.userId), '');
    const report = await h.server.client.workflow.execute(healthSweep, {
      taskQueue: h.taskQueue,
      workflowId: uniqueId('health-sweep'),
      args: [{ intervalSeconds: 60, confirmDelaySeconds: 1 }],
    });
    expect(report).toMatchObject({ checked: 2, suspected: 1, signalled: 1 });
    expect(report.sick).toEqual([
      {
        userId: sick.userId,
        workflowId: machineWorkflowId(sick.userId),
        machineId: sick.machineId,
        reason: 'feed disconnected',
        outcome: 'signalled',
      },
    ]);
    await until('the self-heal', async () => (await restarts(sick.userId)) > 0, 30_000);
    rmSync(join(failDir, sick.userId));
    await until('the recovery', async () => (await h.eventsOf(sick.userId)).some(([, r]) => r === 'recovered'));
    const reasons = (await h.eventsOf(sick.userId)).map(([, r]) => r);
    expect(reasons).toContain('restart 1/1: feed disconnected');
    expect(await restarts(well.userId)).toBe(0);
    await Promise.all([stop(well.handle), stop(sick.handle)]);
    await saveHistoryIfRecording('sweep-reported-sick-healed', await sick.handle.fetchHistory());
  });

  test('a report its own check does not confirm (a flap) restarts nothing; one about another machine is ignored', async () => {
    const m = await running();
    await m.handle.signal(machineSickSignal, { machineId: 'some-other-machine', reason: 'not ours' });
    await m.handle.signal(machineSickSignal, { machineId: m.machineId, reason: 'a blip' });
    // The workflow checked at once (a local activity): healthy, so only its last-healthy time moved.
    await untilStatus(m.handle, 'the confirming check', (s) => s.lastHealthyAt! > m.status.lastHealthyAt!, 20_000);
    const history = JSON.stringify((await m.handle.fetchHistory()).events);
    expect(history).not.toContain('restartFlyMachine');
    expect(await restarts(m.userId)).toBe(0);
    expect((await h.stack.db.store.getMachine(m.userId))?.status).toBe('running');
    await stop(m.handle);
  });

  test(`with the production sweep (every ${HEALTH_SWEEP_DEFAULT_INTERVAL}), a machine turning sick is noticed and healed`, async () => {
    const m = await running();
    const schedule = await ensureHealthSweepSchedule(h.server.client, {
      taskQueue: h.taskQueue,
      interval: HEALTH_SWEEP_DEFAULT_INTERVAL,
    });
    try {
      const d = await timeToNotice({ store: h.stack.db.store, userId: m.userId, failDir, timeoutMs: 4 * 60_000 });
      console.warn(
        `[health-sweep] detection: noticed after ${(d.noticedMs / 1000).toFixed(1)} s (${d.reason}), recovered after ` +
          `${(d.recoveredMs / 1000).toFixed(1)} s, sweep every ${HEALTH_SWEEP_DEFAULT_INTERVAL}, renewals every ${settings.renewalInterval}`,
      );
      expect(d.reason).toMatch(/^restart 1\/1: feed disconnected/);
      expect((await h.stack.db.store.getMachine(m.userId))?.status).toBe('running');
    } finally {
      await h.server.client.schedule.getHandle(schedule.scheduleId).delete();
    }
    await stop(m.handle);
  }, 300_000);
});
