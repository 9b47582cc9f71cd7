import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import {
  createMachineStack,
  liveMachinesOf,
  TEST_FLY_TOKEN,
  TEST_JWT_SECRET,
  type MachineStack,
} from '../test/machine-stack';
import { connectToTestServer, quietBundlerLogger, uniqueId, until } from '../test/temporal';
import { deriveMachineKey } from '../activities/credentials';
import { machineAddress } from '../activities/fly/client';
import { machineLifecycle } from './machine-lifecycle';
import {
  machineWorkflowId,
  paymentFailedSignal,
  statusQuery,
  stopSignal,
  stopUpdate,
  tierChangedSignal,
  type LifecycleSettings,
  type MachineState,
  type MachineStatus,
} from './contract';
import { saveHistoryIfRecording } from '../test/histories';
import { machineTokenSeconds } from '../common/machine-token';
import { MachineStateSearchAttribute, TierSearchAttribute, UserIdSearchAttribute } from '../common/search-attributes';

jest.setTimeout(120_000);

const healthFailDir = mkdtempSync(join(tmpdir(), 'ce-health-'));
const fast: Partial<LifecycleSettings> = {
  renewalInterval: '1 hour',
  startDeadlineSeconds: 30,
  healthDeadlineSeconds: 20,
  maxRestarts: 1,
};

describe('machineLifecycle on a real Temporal server, with machines as real processes (fly-local)', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = uniqueId('machines');

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack({ machineEnv: { HEALTH_FAIL_DIR: healthFailDir } });
    worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath,
        logger: quietBundlerLogger,
      }),
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await stack?.close();
    await server?.close();
    rmSync(healthFailDir, { recursive: true, force: true });
  });

  const start = (userId: string, settings: Partial<LifecycleSettings> = fast) =>
    server.client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });

  async function waitForState(handle: WorkflowHandle, state: MachineState, timeoutMs = 60_000): Promise<MachineStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: MachineStatus | undefined;
    while (Date.now() < deadline) {
      last = await handle.query(statusQuery);
      if (last.state === state) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`workflow never reached ${state}; last status ${JSON.stringify(last)}`);
  }

  const eventsOf = async (userId: string) =>
    (await stack.db.store.listMachineEvents(userId)).reverse().map((e) => [e.toStatus, e.reason]);

  test('provisions to running, answers the status query at each step, and stops back to stopped', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId);
    const seen = new Set<MachineState>();
    let status = await handle.query(statusQuery);
    while (status.state !== 'running') {
      seen.add(status.state);
      expect(['provisioning', 'starting']).toContain(status.state);
      await new Promise((r) => setTimeout(r, 20));
      status = await handle.query(statusQuery);
    }
    expect(status).toMatchObject({ userId, region: 'ams', tier: 'elite', reason: 'healthy' });
    expect(status.machineId).toEqual(expect.any(String));
    expect(status.lastHealthyAt).toEqual(expect.any(String));

    // One real machine process, answering on its private address.
    const machines = await liveMachinesOf(stack.fly, userId);
    expect(machines.map((m) => m.id)).toEqual([status.machineId]);
    expect(machines[0]?.config?.metadata).toMatchObject({ user_id: userId, workflow_id: machineWorkflowId(userId) });
    const health = await fetch(`${machineAddress(machines[0]!, 8080).origin}/health`);
    expect(health.status).toBe(200);
    // The query shows the new state as the workflow records it; the row follows a moment later.
    const row = await until('the row to say running', async () => {
      const r = await stack.db.store.getMachine(userId);
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
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
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
    const userId = await stack.db.createUser('elite');
    const handles = await Promise.all(Array.from({ length: 20 }, () => start(userId)));
    expect(new Set(handles.map((h) => h.firstExecutionRunId)).size).toBe(1);
    await waitForState(handles[0]!, 'running');
    expect(await liveMachinesOf(stack.fly, userId)).toHaveLength(1);
    await handles[0]!.signal(stopSignal, { reason: 'done', requestedBy: 'test' });
    await handles[0]!.result();
  });

  test('a downgrade stops the machine at once with reason "downgraded"', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId);
    await waitForState(handle, 'running');
    await handle.signal(tierChangedSignal, {
      eventId: uniqueId('evt'),
      tier: 'free',
      occurredAt: new Date().toISOString(),
    });
    expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'downgraded', tier: 'free' });
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    await saveHistoryIfRecording('downgrade', await handle.fetchHistory());
  });

  test('a renewal re-checks the entitlement: a tier changed behind the webhook’s back still stops the machine', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    await waitForState(handle, 'running');
    await stack.db.pool.query(`update profiles set subscription_tier = 'pro' where id = $1`, [userId]);
    expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'downgraded' });
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
  });

  test('renewals hand the machine fresh credentials and record when it was last healthy', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    const first = await waitForState(handle, 'running');
    const [machine] = await liveMachinesOf(stack.fly, userId);
    const origin = machineAddress(machine!, 8080).origin;
    let debug = { renewals: 0 };
    for (let i = 0; i < 100 && debug.renewals < 2; i++) {
      await new Promise((r) => setTimeout(r, 200));
      debug = (await (await fetch(`${origin}/debug`)).json()) as typeof debug;
    }
    expect(debug.renewals).toBeGreaterThanOrEqual(2);
    const later = await handle.query(statusQuery);
    expect(Date.parse(later.lastRenewedAt!)).toBeGreaterThan(Date.parse(first.lastRenewedAt!));
    expect((await stack.db.store.getMachine(userId))?.lastHealthyAt?.getTime()).toBeGreaterThan(
      Date.parse(first.lastHealthyAt!),
    );
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
  });

  test('search attributes say where each machine is, and a renewal that changes nothing writes none', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    const first = await waitForState(handle, 'running');
    // Two renewals at least, each recording `running` again with the same attributes.
    await until('two renewals', async () => {
      const now = await handle.query(statusQuery);
      return Date.parse(now.lastRenewedAt!) - Date.parse(first.lastRenewedAt!) >= 2_000 ? now : undefined;
    });
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

  test('a machine that stays sick is restarted a bounded number of times, then destroyed and recorded as error', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId, {
      ...fast,
      renewalInterval: '1 second',
      healthDeadlineSeconds: 3,
      maxRestarts: 1,
    });
    await waitForState(handle, 'running');
    writeFileSync(join(healthFailDir, userId), 'sick');
    const result = await handle.result();
    expect(result.state).toBe('error');
    expect(result.reason).toMatch(/unhealthy after 1 restarts/);
    expect(result.recent.map((t) => t.reason)).toContainEqual(
      expect.stringMatching(/^restart 1\/1: feed disconnected/),
    );
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({
      status: 'error',
      errorMessage: expect.stringMatching(/unhealthy/),
    });
    await saveHistoryIfRecording('sick-machine-restarted-then-error', await handle.fetchHistory());
  });

  test('a machine that never becomes healthy is compensated: destroyed, row "error" with the reason', async () => {
    const userId = await stack.db.createUser('elite');
    mkdirSync(healthFailDir, { recursive: true });
    writeFileSync(join(healthFailDir, userId), 'sick from the start');
    const handle = await start(userId, { ...fast, healthDeadlineSeconds: 2 });
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'error', machineId: null });
    expect(result.reason).toMatch(/did not become healthy/);
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({
      status: 'error',
      errorMessage: expect.stringMatching(/did not become healthy/),
    });
  });

  test('a create Fly refuses for good (422) leaves no machine and an "error" row with the reason', async () => {
    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({ create: { status: 422, message: 'machine limit reached', times: 1 } });
    try {
      const result = await (await start(userId)).result();
      expect(result.state).toBe('error');
      expect(result.reason).toMatch(/machine limit reached/);
      expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
      expect(await stack.db.store.getMachine(userId)).toMatchObject({ status: 'error' });
    } finally {
      stack.flyLocal.setFaults({});
    }
  });

  test('an ambiguous create (500 after the machine was made) is retried by adopting that machine: still one', async () => {
    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({ create: { status: 500, afterEffect: true, times: 1 } });
    try {
      const handle = await start(userId);
      await waitForState(handle, 'running');
      expect(await liveMachinesOf(stack.fly, userId)).toHaveLength(1);
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    } finally {
      stack.flyLocal.setFaults({});
    }
  });

  test('a rate-limited Fly (429, Retry-After) is ridden out until the start deadline, not given up after 6 attempts', async () => {
    const userId = await stack.db.createUser('elite');
    // Other users' bursts: the next 7 creates are refused with 429 and `Retry-After: 1`.
    stack.flyLocal.setFaults({ create: { status: 429, message: 'rate limit exceeded', times: 7 } });
    try {
      const handle = await start(userId);
      const status = await waitForState(handle, 'running', 90_000);
      expect(status.machineId).toEqual(expect.any(String));
      // Each retry waited what Fly asked for (about 1 s), not the policy's 1-2-4-8 s backoff.
      const attempts = ((await handle.fetchHistory()).events ?? []).find((e) => e.activityTaskStartedEventAttributes)
        ?.activityTaskStartedEventAttributes?.attempt;
      expect(attempts).toBeGreaterThanOrEqual(8);
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    } finally {
      stack.flyLocal.setFaults({});
    }
  });

  test('a region without capacity falls back to the next region', async () => {
    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({
      create: { status: 409, flyStatus: 'insufficient_capacity', region: 'ams', message: 'insufficient capacity' },
    });
    try {
      const handle = await start(userId, { ...fast, fallbackRegions: ['fra'] });
      const status = await waitForState(handle, 'running');
      expect(status.region).toBe('fra');
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    } finally {
      stack.flyLocal.setFaults({});
    }
  });

  test('a non-elite user gets no machine', async () => {
    const userId = await stack.db.createUser('free');
    const result = await (await start(userId)).result();
    expect(result).toMatchObject({ state: 'stopped', reason: 'not_entitled' });
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
  });

  test('cancelling the workflow (as from the Temporal UI) destroys the machine and records "stopped"', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId);
    await waitForState(handle, 'running');
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    expect(await stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    expect((await eventsOf(userId)).slice(-2)).toEqual([
      ['stopping', 'cancelled'],
      ['stopped', 'cancelled'],
    ]);
    await saveHistoryIfRecording('cancelled', await handle.fetchHistory());
  });

  test('a stop during a slow boot cancels the start instead of waiting it out', async () => {
    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({ create: { bootDelayMs: 20_000 } });
    try {
      const handle = await start(userId, { ...fast, startDeadlineSeconds: 60 });
      await waitForState(handle, 'starting');
      await handle.signal(stopSignal, { reason: 'changed my mind', requestedBy: 'test' });
      expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'changed my mind' });
      expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
    } finally {
      stack.flyLocal.setFaults({});
    }
  });

  test('no secret (Fly token, JWT secret, machine key, minted user token) appears in the workflow history', async () => {
    const userId = await stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    await waitForState(handle, 'running');
    const [machine] = await liveMachinesOf(stack.fly, userId);
    const mintedToken = machine?.config?.env?.USER_TOKEN;
    expect(mintedToken).toEqual(expect.any(String));
    // It lives about two renewal intervals (here the 10-minute floor), and says it is a machine's.
    const claims = JSON.parse(Buffer.from(mintedToken!.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({
      sub: userId,
      role: 'authenticated',
      ce_machine: true,
      iss: 'cloud-execution/worker',
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(machineTokenSeconds(1000));
    await handle.signal(paymentFailedSignal, { eventId: uniqueId('evt'), occurredAt: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 2500)); // a renewal or two, with credential renewal
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    const fullHistory = await handle.fetchHistory();
    await saveHistoryIfRecording('renewals-and-payment-failed', fullHistory);
    const history = JSON.stringify(fullHistory);
    for (const secret of [TEST_FLY_TOKEN, TEST_JWT_SECRET, deriveMachineKey(TEST_JWT_SECRET, userId), mintedToken!]) {
      expect(history).not.toContain(secret);
      expect(history).not.toContain(Buffer.from(secret).toString('base64'));
    }
  });
});
