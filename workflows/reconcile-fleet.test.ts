import { ensureReconcileSchedule } from '../worker/reconcile-schedule';
import { liveMachinesOf, TEST_IMAGE } from '../test/machine-stack';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { uniqueId } from '../test/temporal';
import { untilStatus } from '../test/kit/workflow-status';

import { machineWorkflowId, statusQuery, stopUpdate } from './contract';

import { reconcileFleet } from './reconcile-fleet';
import type { ReconcileReport } from './reconcile-plan';

jest.setTimeout(120_000);

describe('reconcileFleet on the real dev server and fly-local', () => {
  const h = useLifecycleWorker({ prefix: 'reconcile', reconcile: true });
  const { taskQueue } = h;

  const reconcile = (minMachineAgeSeconds: number): Promise<ReconcileReport> =>
    h.server.client.workflow.execute(reconcileFleet, {
      taskQueue,
      workflowId: uniqueId('reconcile-fleet'),
      args: [{ minMachineAgeSeconds }],
    });

  /** A machine created behind every workflow's back: what a crash between "create" and "insert row" used to leave. */
  const orphan = async (userId: string) =>
    h.stack.fly.createMachine({
      name: `orphan-${userId.slice(0, 8)}-${Math.random().toString(36).slice(2, 6)}`,
      region: 'ams',
      config: { image: TEST_IMAGE, metadata: { user_id: userId, workflow_id: machineWorkflowId(userId) } },
    });

  async function startMachine(userId: string) {
    const handle = await h.start(userId, {
      renewalInterval: '1 hour',
      startDeadlineSeconds: 30,
      healthDeadlineSeconds: 30,
    });
    const status = await untilStatus(handle, 'running', (s) => s.state === 'running');
    return { handle, status };
  }

  test('an old orphan machine is destroyed and audited; a young one is left alone (age guard)', async () => {
    const userId = await h.stack.db.createUser('elite');
    const machine = await orphan(userId);

    const young = await reconcile(3600);
    expect(young.destroyed).toEqual([]);
    expect((await liveMachinesOf(h.stack.fly, userId)).map((m) => m.id)).toEqual([machine.id]);

    const report = await reconcile(0);
    expect(report.destroyed).toEqual([
      expect.objectContaining({ machineId: machine.id, userId, kind: 'orphan', outcome: 'destroyed' }),
    ]);
    expect(report.machinesSeen).toBeGreaterThanOrEqual(1);
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    const events = await h.stack.db.store.listMachineEvents(userId);
    expect(events.map((e) => e.reason)).toContain(
      `reconcile: destroyed orphan machine ${machine.id} (no running workflow)`,
    );
  });

  test('a stale row (running, no workflow) is repaired to error with a reconcile reason', async () => {
    const userId = await h.stack.db.createUser('elite');
    await h.stack.db.store.recordMachineTransition({
      userId,
      status: 'running',
      machineId: 'gone-machine',
      workflowId: machineWorkflowId(userId),
      reason: 'healthy',
    });
    const report = await reconcile(0);
    expect(report.repaired).toContainEqual({ userId, from: 'running', to: 'error' });
    const row = await h.stack.db.store.getMachine(userId);
    expect(row?.status).toBe('error');
    const [latest] = await h.stack.db.store.listMachineEvents(userId, { limit: 1 });
    expect(latest).toMatchObject({ fromStatus: 'running', toStatus: 'error' });
    expect(latest?.reason).toMatch(/^reconcile: row said running but no workflow runs/);
  });

  test('a vanished machine: the workflow is signalled, renews at once and provisions a replacement', async () => {
    const userId = await h.stack.db.createUser('elite');
    const { handle, status } = await startMachine(userId);
    const gone = status.machineId!;
    await h.stack.fly.deleteMachine(gone, { force: true });

    const report = await reconcile(0);
    expect(report.signalled).toEqual([{ workflowId: machineWorkflowId(userId), userId, machineId: gone }]);
    const replaced = await untilStatus(
      handle,
      'a replacement machine',
      (s) => s.state === 'running' && !!s.machineId && s.machineId !== gone,
    );
    expect((await liveMachinesOf(h.stack.fly, userId)).map((m) => m.id)).toEqual([replaced.machineId]);
    const events = await h.stack.db.store.listMachineEvents(userId);
    expect(events.map((e) => e.reason)).toContain(
      `reconcile: machine ${gone} vanished; signalled ${machineWorkflowId(userId)} to renew now`,
    );
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('two machines for one user: the one the workflow names stays, the other goes; twice at once is safe', async () => {
    const userId = await h.stack.db.createUser('elite');
    const { handle, status } = await startMachine(userId);
    const extra = await orphan(userId);

    const [a, b] = await Promise.all([reconcile(0), reconcile(0)]);
    const destroyedIds = [...a.destroyed, ...b.destroyed].map((d) => d.machineId);
    // Each run destroys it or finds it already gone; never the workflow's own machine.
    expect(destroyedIds.filter((id) => id === extra.id).length).toBeLessThanOrEqual(2);
    expect(destroyedIds).not.toContain(status.machineId);
    expect((await liveMachinesOf(h.stack.fly, userId)).map((m) => m.id)).toEqual([status.machineId]);
    const events = (await h.stack.db.store.listMachineEvents(userId)).filter((e) =>
      e.reason?.startsWith(`reconcile: destroyed duplicate machine ${extra.id}`),
    );
    expect(events).toHaveLength(1);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'running', machineId: status.machineId });
    expect((await handle.query(statusQuery)).state).toBe('running');
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('billing that says stop behind the workflow’s back (a lost nudge): reconcile nudges, the workflow stops', async () => {
    const userId = await h.stack.db.createUser('elite');
    const { handle } = await startMachine(userId);
    // The webhook applied an overdue payment whose grace is over, and its nudge never arrived.
    await h.stack.db.pool.query(
      `insert into billing_accounts (user_id, payment_state, overdue_since, grace_ends_at, last_payment_event_at)
       values ($1, 'overdue', now() - interval '4 days', now() - interval '1 day', now() - interval '4 days')`,
      [userId],
    );
    const report = await reconcile(0);
    expect(report.nudged).toEqual([
      {
        workflowId: machineWorkflowId(userId),
        userId,
        detail: expect.stringMatching(/^payment overdue since .*, grace ended/),
      },
    ]);
    expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'payment_overdue' });
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    const reasons = (await h.stack.db.store.listMachineEvents(userId)).map((e) => e.reason);
    expect(reasons).toContainEqual(expect.stringMatching(/^reconcile: billing says stop \(payment overdue since/));
  });

  test('the schedule is created once and updated after (idempotent at every worker start)', async () => {
    const opts = { taskQueue, interval: '5 minutes', minMachineAgeSeconds: 600 };
    const first = await ensureReconcileSchedule(h.server.client, opts);
    const second = await ensureReconcileSchedule(h.server.client, { ...opts, interval: '7 minutes' });
    expect(first).toEqual({ scheduleId: `reconcile-fleet-${taskQueue}`, created: true });
    expect(second).toEqual({ scheduleId: first.scheduleId, created: false });
    const handle = h.server.client.schedule.getHandle(first.scheduleId);
    const d = await handle.describe();
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.spec.intervals?.[0]?.every).toBe(420_000);
    expect(d.action).toMatchObject({ workflowType: 'reconcileFleet', taskQueue });
    await handle.delete();
  });
});
