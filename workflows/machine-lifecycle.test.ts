import { liveMachinesOf } from '../test/machine-stack';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { uniqueId } from '../test/temporal';
import { until, untilValue } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { machineAddress } from '../fly/machines';
import {
  machineWorkflowId,
  statusQuery,
  stopSignal,
  stopUpdate,
  tierChangedSignal,
  type LifecycleSettings,
} from './contract';
import { saveHistoryIfRecording } from '../test/kit/histories';
import { MachineStateSearchAttribute, TierSearchAttribute, UserIdSearchAttribute } from '../common/search-attributes';

jest.setTimeout(120_000);

const fast: Partial<LifecycleSettings> = {
  renewalInterval: '1 hour',
  startDeadlineSeconds: 30,
  healthDeadlineSeconds: 20,
  maxRestarts: 1,
};

describe('machineLifecycle on a real Temporal server, with machines as real processes (fly-local)', () => {
  const h = useLifecycleWorker({ defaults: fast });
  const { start, waitForState, eventsOf } = h;

  test('provisions to running, answers the status query at each step, and stops back to stopped', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId);
    // Every state the query shows on the way is one of the steps to running.
    const status = await untilStatus(
      handle,
      'running',
      (s) => {
        if (s.state !== 'running') expect(['provisioning', 'starting']).toContain(s.state);
        return s.state === 'running';
      },
      { everyMs: 20 },
    );
    expect(status).toMatchObject({ userId, region: 'ams', tier: 'elite', reason: 'healthy' });
    expect(status.machineId).toEqual(expect.any(String));
    expect(status.lastHealthyAt).toEqual(expect.any(String));

    // One real machine process, answering on its private address.
    const machines = await liveMachinesOf(h.stack.fly, userId);
    expect(machines.map((m) => m.id)).toEqual([status.machineId]);
    expect(machines[0]?.config?.metadata).toMatchObject({ user_id: userId, workflow_id: machineWorkflowId(userId) });
    const health = await fetch(`${machineAddress(machines[0]!, 8080).origin}/health`);
    expect(health.status).toBe(200);
    // The query shows the new state as the workflow records it; the row follows a moment later.
    const row = await until('the row to say running', async () => {
      const r = await h.stack.db.store.getMachine(userId);
      return r?.status === 'running' ? r : undefined;
    });
    expect(row).toMatchObject({
      status: 'running',
      machineId: status.machineId,
      workflowId: machineWorkflowId(userId),
    });

    const stopped = await handle.executeUpdate(stopUpdate, {
      args: [{ reason: 'user_requested', requestedBy: 'test' }],
    });
    expect(stopped).toMatchObject({ state: 'stopped', reason: 'user_requested', machineId: null });
    expect(await handle.result()).toMatchObject({ state: 'stopped' });
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    expect((await eventsOf(userId)).map(([s]) => s)).toEqual([
      'provisioning',
      'starting',
      'running',
      'stopping',
      'stopped',
    ]);
    expect(stopped.recent.map((t) => t.state)).toEqual(['provisioning', 'starting', 'running', 'stopping', 'stopped']);

    await saveHistoryIfRecording('happy-path', await handle.fetchHistory());
  });

  test('20 concurrent starts for one user make one workflow and one Fly machine', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handles = await Promise.all(Array.from({ length: 20 }, () => start(userId)));
    expect(new Set(handles.map((x) => x.firstExecutionRunId)).size).toBe(1);
    await waitForState(handles[0]!, 'running');
    expect(await liveMachinesOf(h.stack.fly, userId)).toHaveLength(1);
    await handles[0]!.signal(stopSignal, { reason: 'done', requestedBy: 'test' });
    await handles[0]!.result();
  });

  test('a downgrade stops the machine at once with reason "downgraded"', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId);
    await waitForState(handle, 'running');
    await handle.signal(tierChangedSignal, {
      eventId: uniqueId('evt'),
      tier: 'free',
      occurredAt: new Date().toISOString(),
    });
    expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'downgraded', tier: 'free' });
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    await saveHistoryIfRecording('downgrade', await handle.fetchHistory());
  });

  test('a renewal re-checks the entitlement: a tier changed behind the webhook’s back still stops the machine', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    await waitForState(handle, 'running');
    await h.stack.db.pool.query(`update profiles set subscription_tier = 'pro' where id = $1`, [userId]);
    expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'downgraded' });
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
  });

  test('renewals hand the machine fresh credentials and record when it was last healthy', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    const first = await waitForState(handle, 'running');
    const [machine] = await liveMachinesOf(h.stack.fly, userId);
    const origin = machineAddress(machine!, 8080).origin;
    await untilValue(
      'two renewals at the machine',
      async () => ((await (await fetch(`${origin}/debug`)).json()) as { renewals: number }).renewals,
      (renewals) => renewals >= 2,
      { timeoutMs: 20_000, everyMs: 200 },
    );
    const later = await handle.query(statusQuery);
    expect(Date.parse(later.lastRenewedAt!)).toBeGreaterThan(Date.parse(first.lastRenewedAt!));
    expect((await h.stack.db.store.getMachine(userId))?.lastHealthyAt?.getTime()).toBeGreaterThan(
      Date.parse(first.lastHealthyAt!),
    );
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('a renewal is one workflow task of local activities (billing, credentials, health, record): one action', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    const first = await waitForState(handle, 'running');
    await untilStatus(
      handle,
      'two renewals',
      (now) => Date.parse(now.lastRenewedAt!) - Date.parse(first.lastRenewedAt!) >= 2_000,
    );
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    // Remote activities only to provision (create, started, healthy) and to tear down: none per renewal.
    const remote = events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(remote).toEqual(['ensureFlyMachine', 'waitForFlyState', 'waitForRuntimeHealthy', 'destroyFlyMachines']);
    // Each renewal's local activities share one workflow task (its markers name the same completion).
    const tasks = new Map<string, number>();
    for (const e of events) {
      const m = e.markerRecordedEventAttributes;
      if (m?.markerName !== 'core_local_activity') continue;
      const task = String(m.workflowTaskCompletedEventId);
      tasks.set(task, (tasks.get(task) ?? 0) + 1);
    }
    // syncBilling + renewMachineCredentials + checkRuntimeHealth + recordTransition in one task, for every renewal
    // (each renewal follows a timer: the first wait after running, then one after each renewal but the last).
    const renewalTasks = [...tasks.values()].filter((n) => n === 4).length;
    const timers = events.filter((e) => e.timerStartedEventAttributes).length;
    expect(renewalTasks).toBeGreaterThanOrEqual(Math.max(2, timers - 1));
    await saveHistoryIfRecording('renewals-local-activities', history);
  });

  test('search attributes say where each machine is, and a renewal that changes nothing writes none', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    const first = await waitForState(handle, 'running');
    // Two renewals at least, each recording `running` again with the same attributes.
    await untilStatus(
      handle,
      'two renewals',
      (now) => Date.parse(now.lastRenewedAt!) - Date.parse(first.lastRenewedAt!) >= 2_000,
    );
    await handle.signal(tierChangedSignal, {
      eventId: uniqueId('evt'),
      tier: 'free',
      occurredAt: new Date().toISOString(),
    });
    await handle.result();

    const attributes = (await handle.describe()).typedSearchAttributes;
    expect(attributes.get(UserIdSearchAttribute)).toBe(userId);
    expect(attributes.get(MachineStateSearchAttribute)).toBe('stopped');
    expect(attributes.get(TierSearchAttribute)).toBe('free');
    // Each upsert is a history event and a visibility write: consecutive ones always carry a change.
    const upserts = ((await handle.fetchHistory()).events ?? [])
      .map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields)
      .filter((fields) => fields != null)
      .map((fields) =>
        JSON.stringify(
          Object.entries(fields!)
            .map(([k, v]) => [k, Buffer.from(v.data ?? []).toString()])
            .sort(),
        ),
      );
    expect(upserts.length).toBeGreaterThanOrEqual(4); // provisioning, starting, running, stopping/stopped
    upserts.slice(1).forEach((u, i) => expect(u).not.toEqual(upserts[i]));
  });
});
