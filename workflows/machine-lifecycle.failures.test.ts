import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { liveMachinesOf, TEST_FLY_TOKEN, TEST_JWT_SECRET } from '../test/machine-stack';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { uniqueId } from '../test/temporal';
import { sleep } from '../test/kit/wait';
import { deriveMachineKey } from '../common/credentials';
import { paymentFailedSignal, stopSignal, stopUpdate, type LifecycleSettings } from './contract';
import { saveHistoryIfRecording } from '../test/kit/histories';
import { machineTokenSeconds } from '../common/machine-token';

jest.setTimeout(120_000);

const healthFailDir = mkdtempSync(join(tmpdir(), 'ce-health-'));
const fast: Partial<LifecycleSettings> = {
  renewalInterval: '1 hour',
  startDeadlineSeconds: 30,
  healthDeadlineSeconds: 20,
  maxRestarts: 1,
};

describe('machineLifecycle when things go wrong: sick machines, Fly refusals, cancellation (real server, fly-local)', () => {
  const h = useLifecycleWorker({ machineEnv: { HEALTH_FAIL_DIR: healthFailDir }, defaults: fast });
  const { start, waitForState, eventsOf } = h;
  afterAll(() => rmSync(healthFailDir, { recursive: true, force: true }));

  test('a machine that stays sick is restarted a bounded number of times, then destroyed and recorded as error', async () => {
    const userId = await h.stack.db.createUser('elite');
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
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({
      status: 'error',
      errorMessage: expect.stringMatching(/unhealthy/),
    });
    await saveHistoryIfRecording('sick-machine-restarted-then-error', await handle.fetchHistory());
  });

  test('a machine that never becomes healthy is compensated: destroyed, row "error" with the reason', async () => {
    const userId = await h.stack.db.createUser('elite');
    mkdirSync(healthFailDir, { recursive: true });
    writeFileSync(join(healthFailDir, userId), 'sick from the start');
    const handle = await start(userId, { ...fast, healthDeadlineSeconds: 2 });
    const result = await handle.result();
    expect(result).toMatchObject({ state: 'error', machineId: null });
    expect(result.reason).toMatch(/did not become healthy/);
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({
      status: 'error',
      errorMessage: expect.stringMatching(/did not become healthy/),
    });
  });

  test('a create Fly refuses for good (422) leaves no machine and an "error" row with the reason', async () => {
    const userId = await h.stack.db.createUser('elite');
    h.stack.flyLocal.setFaults({ create: { status: 422, message: 'machine limit reached', times: 1 } });
    try {
      const result = await (await start(userId)).result();
      expect(result.state).toBe('error');
      expect(result.reason).toMatch(/machine limit reached/);
      expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
      expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'error' });
    } finally {
      h.stack.flyLocal.setFaults({});
    }
  });

  test('an ambiguous create (500 after the machine was made) is retried by adopting that machine: still one', async () => {
    const userId = await h.stack.db.createUser('elite');
    h.stack.flyLocal.setFaults({ create: { status: 500, afterEffect: true, times: 1 } });
    try {
      const handle = await start(userId);
      await waitForState(handle, 'running');
      expect(await liveMachinesOf(h.stack.fly, userId)).toHaveLength(1);
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    } finally {
      h.stack.flyLocal.setFaults({});
    }
  });

  test('a rate-limited Fly (429, Retry-After) is ridden out until the start deadline, not given up after 6 attempts', async () => {
    const userId = await h.stack.db.createUser('elite');
    // Other users' bursts: the next 7 creates are refused with 429 and `Retry-After: 1`.
    h.stack.flyLocal.setFaults({ create: { status: 429, message: 'rate limit exceeded', times: 7 } });
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
      h.stack.flyLocal.setFaults({});
    }
  });

  test('a region without capacity falls back to the next region', async () => {
    const userId = await h.stack.db.createUser('elite');
    h.stack.flyLocal.setFaults({
      create: { status: 409, flyStatus: 'insufficient_capacity', region: 'ams', message: 'insufficient capacity' },
    });
    try {
      const handle = await start(userId, { ...fast, fallbackRegions: ['fra'] });
      const status = await waitForState(handle, 'running');
      expect(status.region).toBe('fra');
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    } finally {
      h.stack.flyLocal.setFaults({});
    }
  });

  test('a non-elite user gets no machine', async () => {
    const userId = await h.stack.db.createUser('free');
    const result = await (await start(userId)).result();
    expect(result).toMatchObject({ state: 'stopped', reason: 'not_entitled' });
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
  });

  test('cancelling the workflow (as from the Temporal UI) destroys the machine and records "stopped"', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId);
    await waitForState(handle, 'running');
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    expect((await eventsOf(userId)).slice(-2)).toEqual([
      ['stopping', 'cancelled'],
      ['stopped', 'cancelled'],
    ]);
    await saveHistoryIfRecording('cancelled', await handle.fetchHistory());
  });

  test('a stop during a slow boot cancels the start instead of waiting it out', async () => {
    const userId = await h.stack.db.createUser('elite');
    h.stack.flyLocal.setFaults({ create: { bootDelayMs: 20_000 } });
    try {
      const handle = await start(userId, { ...fast, startDeadlineSeconds: 60 });
      await waitForState(handle, 'starting');
      await handle.signal(stopSignal, { reason: 'changed my mind', requestedBy: 'test' });
      expect(await handle.result()).toMatchObject({ state: 'stopped', reason: 'changed my mind' });
      expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    } finally {
      h.stack.flyLocal.setFaults({});
    }
  });

  test('no secret (Fly token, JWT secret, machine key, minted user token) appears in the workflow history', async () => {
    const userId = await h.stack.db.createUser('elite');
    const handle = await start(userId, { ...fast, renewalInterval: '1 second' });
    await waitForState(handle, 'running');
    const [machine] = await liveMachinesOf(h.stack.fly, userId);
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
    await sleep(2500); // a renewal or two, with credential renewal
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
