import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ensureReconcileSchedule } from '../activities/reconcile-activities';
import {
  createMachineStack,
  liveMachinesOf,
  TEST_IMAGE,
  TEST_JWT_SECRET,
  type MachineStack,
} from '../test/machine-stack';
import { connectToTestServer, quietBundlerLogger, uniqueId, until } from '../test/temporal';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { machineWorkflowId, statusQuery, stopUpdate } from './contract';
import { machineLifecycle } from './machine-lifecycle';
import { planReconcile, reconcileFleet, type ReconcileReport } from './reconcile-fleet';

jest.setTimeout(120_000);

describe('reconcileFleet on the real dev server and fly-local', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = uniqueId('reconcile');

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack();
    const activities = createActivities({
      fly: stack.fly,
      store: stack.db.store,
      image: TEST_IMAGE,
      jwtSecret: TEST_JWT_SECRET,
      runtimeEnv: { BINANCE_WS_URL: 'ws://127.0.0.1:9', BINANCE_REST_URL: 'http://127.0.0.1:9' },
      credentialTtlSeconds: 3600,
      temporal: { client: server.client, taskQueue },
    });
    worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await stack?.close();
    await server?.close();
  });

  const reconcile = (minMachineAgeSeconds: number): Promise<ReconcileReport> =>
    server.client.workflow.execute(reconcileFleet, {
      taskQueue,
      workflowId: uniqueId('reconcile-fleet'),
      args: [{ minMachineAgeSeconds }],
    });

  /** A machine created behind every workflow's back: what a crash between "create" and "insert row" used to leave. */
  const orphan = async (userId: string) =>
    stack.fly.createMachine({
      name: `orphan-${userId.slice(0, 8)}-${Math.random().toString(36).slice(2, 6)}`,
      region: 'ams',
      config: { image: TEST_IMAGE, metadata: { user_id: userId, workflow_id: machineWorkflowId(userId) } },
    });

  async function startMachine(userId: string) {
    const handle = await server.client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      args: [
        {
          userId,
          region: 'ams',
          cpuPriority: 'low',
          settings: { renewalInterval: '1 hour', startDeadlineSeconds: 30, healthDeadlineSeconds: 30 },
        },
      ],
    });
    const status = await until('running', async () => {
      const s = await handle.query(statusQuery);
      return s.state === 'running' ? s : undefined;
    });
    return { handle, status };
  }

  test('an old orphan machine is destroyed and audited; a young one is left alone (age guard)', async () => {
    const userId = await stack.db.createUser('elite');
    const machine = await orphan(userId);

    const young = await reconcile(3600);
    expect(young.destroyed).toEqual([]);
    expect((await liveMachinesOf(stack.fly, userId)).map((m) => m.id)).toEqual([machine.id]);

    const report = await reconcile(0);
    expect(report.destroyed).toEqual([
      expect.objectContaining({ machineId: machine.id, userId, kind: 'orphan', outcome: 'destroyed' }),
    ]);
    expect(report.machinesSeen).toBeGreaterThanOrEqual(1);
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    const events = await stack.db.store.listMachineEvents(userId);
    expect(events.map((e) => e.reason)).toContain(
      `reconcile: destroyed orphan machine ${machine.id} (no running workflow)`,
    );
  });

  test('a stale row (running, no workflow) is repaired to error with a reconcile reason', async () => {
    const userId = await stack.db.createUser('elite');
    await stack.db.store.recordMachineTransition({
      userId,
      status: 'running',
      machineId: 'gone-machine',
      workflowId: machineWorkflowId(userId),
      reason: 'healthy',
    });
    const report = await reconcile(0);
    expect(report.repaired).toContainEqual({ userId, from: 'running', to: 'error' });
    const row = await stack.db.store.getMachine(userId);
    expect(row?.status).toBe('error');
    const [latest] = await stack.db.store.listMachineEvents(userId, { limit: 1 });
    expect(latest).toMatchObject({ fromStatus: 'running', toStatus: 'error' });
    expect(latest?.reason).toMatch(/^reconcile: row said running but no workflow runs/);
  });

  test('a vanished machine: the workflow is signalled, renews at once and provisions a replacement', async () => {
    const userId = await stack.db.createUser('elite');
    const { handle, status } = await startMachine(userId);
    const gone = status.machineId!;
    await stack.fly.deleteMachine(gone, { force: true });

    const report = await reconcile(0);
    expect(report.signalled).toEqual([{ workflowId: machineWorkflowId(userId), userId, machineId: gone }]);
    const replaced = await until('a replacement machine', async () => {
      const s = await handle.query(statusQuery);
      return s.state === 'running' && s.machineId && s.machineId !== gone ? s : undefined;
    });
    expect((await liveMachinesOf(stack.fly, userId)).map((m) => m.id)).toEqual([replaced.machineId]);
    const events = await stack.db.store.listMachineEvents(userId);
    expect(events.map((e) => e.reason)).toContain(
      `reconcile: machine ${gone} vanished; signalled ${machineWorkflowId(userId)} to renew now`,
    );
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('two machines for one user: the one the workflow names stays, the other goes; twice at once is safe', async () => {
    const userId = await stack.db.createUser('elite');
    const { handle, status } = await startMachine(userId);
    const extra = await orphan(userId);

    const [a, b] = await Promise.all([reconcile(0), reconcile(0)]);
    const destroyedIds = [...a.destroyed, ...b.destroyed].map((d) => d.machineId);
    // Each run destroys it or finds it already gone; never the workflow's own machine.
    expect(destroyedIds.filter((id) => id === extra.id).length).toBeLessThanOrEqual(2);
    expect(destroyedIds).not.toContain(status.machineId);
    expect((await liveMachinesOf(stack.fly, userId)).map((m) => m.id)).toEqual([status.machineId]);
    const events = (await stack.db.store.listMachineEvents(userId)).filter((e) =>
      e.reason?.startsWith(`reconcile: destroyed duplicate machine ${extra.id}`),
    );
    expect(events).toHaveLength(1);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({ status: 'running', machineId: status.machineId });
    expect((await handle.query(statusQuery)).state).toBe('running');
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('billing that says stop behind the workflow’s back (a lost nudge): reconcile nudges, the workflow stops', async () => {
    const userId = await stack.db.createUser('elite');
    const { handle } = await startMachine(userId);
    // The webhook applied an overdue payment whose grace is over, and its nudge never arrived.
    await stack.db.pool.query(
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
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    const reasons = (await stack.db.store.listMachineEvents(userId)).map((e) => e.reason);
    expect(reasons).toContainEqual(expect.stringMatching(/^reconcile: billing says stop \(payment overdue since/));
  });

  test('the schedule is created once and updated after (idempotent at every worker start)', async () => {
    const opts = { taskQueue, interval: '5 minutes', minMachineAgeSeconds: 600 };
    const first = await ensureReconcileSchedule(server.client, opts);
    const second = await ensureReconcileSchedule(server.client, { ...opts, interval: '7 minutes' });
    expect(first).toEqual({ scheduleId: `reconcile-fleet-${taskQueue}`, created: true });
    expect(second).toEqual({ scheduleId: first.scheduleId, created: false });
    const handle = server.client.schedule.getHandle(first.scheduleId);
    const d = await handle.describe();
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.spec.intervals?.[0]?.every).toBe(420_000);
    expect(d.action).toMatchObject({ workflowType: 'reconcileFleet', taskQueue });
    await handle.delete();
  });
});

describe('planReconcile (pure)', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const old = '2026-01-01T11:00:00Z';
  const young = '2026-01-01T11:59:50Z';
  const machine = (id: string, userId: string, createdAt = old) => ({
    id,
    name: id,
    state: 'started',
    userId,
    workflowIdTag: null,
    createdAt,
  });
  const wf = (userId: string, status: { state: string; machineId: string | null; since: string } | null) => ({
    workflowId: `machine-${userId}`,
    userId,
    status,
    searchAttributes: { state: null, machineId: null },
  });

  test('a mid-step or unanswered workflow owns its user machines; nothing young is touched', () => {
    const plan = planReconcile(
      {
        rows: [{ userId: 'u3', status: 'running', machineId: 'm3', workflowId: null, updatedAt: young }],
        machines: [machine('m1', 'u1'), machine('m1b', 'u1'), machine('m2', 'u2'), machine('m3', 'u3', young)],
        workflows: [wf('u1', { state: 'provisioning', machineId: null, since: old }), wf('u2', null)],
      },
      now,
      60,
    );
    expect(plan).toEqual({ destroy: [], repair: [], signal: [], nudge: [] });
  });

  test('orphans, duplicates, stale rows and vanished machines', () => {
    const plan = planReconcile(
      {
        rows: [
          { userId: 'u1', status: 'stopped', machineId: null, workflowId: null, updatedAt: old },
          { userId: 'u4', status: 'starting', machineId: null, workflowId: null, updatedAt: old },
        ],
        machines: [machine('a', 'u1'), machine('b', 'u2'), machine('c', 'u2')],
        workflows: [
          wf('u2', { state: 'running', machineId: 'c', since: old }),
          wf('u3', { state: 'running', machineId: 'zz', since: old }),
        ],
      },
      now,
      60,
    );
    expect(plan.destroy).toEqual([
      { machineId: 'a', userId: 'u1', kind: 'orphan' },
      { machineId: 'b', userId: 'u2', kind: 'duplicate', keep: 'c' },
    ]);
    expect(plan.repair).toEqual([{ userId: 'u4', from: 'starting', seenUpdatedAt: old, kind: 'ended' }]);
    expect(plan.signal).toEqual([{ workflowId: 'machine-u3', userId: 'u3', machineId: 'zz' }]);
    expect(plan.nudge).toEqual([]);
  });

  test('a running workflow whose stored billing no longer entitles its user is nudged; others are not', () => {
    const paid = { profileTier: 'elite', profileTierChangedAt: old, account: null };
    const overdue = (graceEndsAt: string) => ({
      ...paid,
      account: {
        tier: null,
        tierChangedAt: null,
        paymentState: 'overdue' as const,
        overdueSince: old,
        graceEndsAt,
        lastPaymentEventAt: old,
      },
    });
    const row = (userId: string, billing: ReturnType<typeof overdue> | typeof paid) => ({
      userId,
      status: 'running' as const,
      machineId: `m-${userId}`,
      workflowId: `machine-${userId}`,
      updatedAt: old,
      billing,
    });
    const plan = planReconcile(
      {
        rows: [
          row('paid', paid),
          row('in-grace', overdue('2026-01-02T00:00:00Z')),
          row('grace-over', overdue('2026-01-01T11:30:00Z')),
          row('downgraded', { ...paid, profileTier: 'free' }),
          row('starting', { ...paid, profileTier: 'free' }),
        ],
        machines: ['paid', 'in-grace', 'grace-over', 'downgraded', 'starting'].map((u) => machine(`m-${u}`, u)),
        workflows: ['paid', 'in-grace', 'grace-over', 'downgraded']
          .map((u) => wf(u, { state: 'running', machineId: `m-${u}`, since: old }))
          .concat(wf('starting', { state: 'starting', machineId: 'm-starting', since: old })),
      },
      now,
      60,
    );
    expect(plan.nudge).toEqual([
      {
        workflowId: 'machine-grace-over',
        userId: 'grace-over',
        detail: 'payment overdue since 2026-01-01T11:00:00.000Z, grace ended 2026-01-01T11:30:00.000Z',
      },
      {
        workflowId: 'machine-downgraded',
        userId: 'downgraded',
        detail: 'a cloud machine needs the elite tier; your tier is free',
      },
    ]);
  });
});
