import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineAddress } from '../fly/machines';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { fakeRuntimePath, liveMachinesOf, TEST_IMAGE } from '../test/machine-stack';
import { sleep, untilValue } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { ensureImageRollout } from '../worker/rollout-start';
import {
  imageRolloutWorkflowId,
  machineWorkflowId,
  pauseRolloutSignal,
  resumeRolloutSignal,
  rolloutStatusQuery,
  statusQuery,
  stopUpdate,
  type ImageRolloutRequest,
  type LifecycleSettings,
  type RolloutStatus,
} from './contract';
import { imageRollout } from './image-rollout';

jest.setTimeout(180_000);

const V2 = 'registry.fly.io/cloud-execution-runtime:v2';
const V3 = 'registry.fly.io/cloud-execution-runtime:v3';
/** Its process exits at once, every time: never healthy. */
const BROKEN = 'registry.fly.io/cloud-execution-runtime:v2-broken';
/** The fake runtime reports unhealthy while a file named after its user is here (test/fixtures/fake-runtime.mjs). */
const failDir = mkdtempSync(join(tmpdir(), 'ce-rollout-health-'));

const settings: Partial<LifecycleSettings> = {
  renewalInterval: '1 hour',
  startDeadlineSeconds: 30,
  healthDeadlineSeconds: 6,
  maxRestarts: 1,
};

describe('imageRollout on the real dev server, with machines as real processes (fly-local)', () => {
  const h = useLifecycleWorker({
    prefix: 'rollout',
    reconcile: true, // wires the Temporal client into the activities: the rollout lists and updates workflows
    defaults: settings,
    machineEnv: { HEALTH_FAIL_DIR: failDir },
  });
  /** Four users, in the rollout's order (by workflow id); the first renews every second, racing the rollout. */
  let users: string[] = [];

  const flyImage = async (userId: string) => (await liveMachinesOf(h.stack.fly, userId))[0]?.config?.image;
  const healthStatus = async (userId: string) => {
    const [machine] = await liveMachinesOf(h.stack.fly, userId);
    return (await fetch(`${machineAddress(machine!, 8080).origin}/health`)).status;
  };
  const handleOf = (userId: string) => h.server.client.workflow.getHandle(machineWorkflowId(userId));
  const rollout = (request: ImageRolloutRequest) =>
    h.server.client.workflow.start(imageRollout, {
      taskQueue: h.taskQueue,
      workflowId: imageRolloutWorkflowId(request.image),
      args: [request],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  const untilRollout = (workflowId: string, what: string, ok: (s: RolloutStatus) => boolean) =>
    untilValue(what, () => h.server.client.workflow.getHandle(workflowId).query(rolloutStatusQuery), ok, {
      timeoutMs: 90_000,
      everyMs: 250,
    });

  beforeAll(async () => {
    const fake = { command: process.execPath, args: [fakeRuntimePath], env: { HEALTH_FAIL_DIR: failDir } };
    h.stack.flyLocal.registerImage(V2, fake);
    h.stack.flyLocal.registerImage(V3, fake);
    h.stack.flyLocal.registerImage(BROKEN, { command: process.execPath, args: ['-e', 'process.exit(3)'] });
    const created = await Promise.all([1, 2, 3, 4].map(() => h.stack.db.createUser('elite')));
    users = created.sort((a, b) => (machineWorkflowId(a) < machineWorkflowId(b) ? -1 : 1));
    const handles = await Promise.all(
      users.map((u, i) => h.start(u, i === 0 ? { ...settings, renewalInterval: '1 second' } : settings)),
    );
    await Promise.all(handles.map((handle) => h.waitForState(handle, 'running')));
  });
  afterAll(async () => {
    await Promise.all(
      users.map((u) =>
        handleOf(u)
          .executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] })
          .catch(() => undefined),
      ),
    );
    rmSync(failDir, { recursive: true, force: true });
  });

  test('four running machines move to v2, two at a time: each healthy on it, audited; a later self-heal keeps v2', async () => {
    for (const u of users) expect(await flyImage(u)).toBe(TEST_IMAGE);
    const handle = await rollout({ image: V2, batchSize: 2 });
    const report = await handle.result();
    expect(report).toEqual({
      image: V2,
      total: 4,
      updated: 4,
      rolledBack: 0,
      failed: 0,
      skipped: 0,
      pending: 0,
      paused: false,
      pausedBy: null,
      done: true,
      failures: [],
    });
    expect(await handle.query(rolloutStatusQuery)).toEqual(report);
    const details = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
    expect(details.currentDetails).toBe(
      `rollout of ${V2}: 4/4 updated, 0 rolled back, 0 failed, 0 skipped, 0 pending · done`,
    );

    const spans: { start: number; end: number }[] = [];
    for (const u of users) {
      expect(await flyImage(u)).toBe(V2);
      expect(await healthStatus(u)).toBe(200);
      expect((await handleOf(u).query(statusQuery)).state).toBe('running');
      const events = (await h.stack.db.store.listMachineEvents(u)).reverse();
      const start = events.find((e) => e.reason === `image_rollout: updating to ${V2}`);
      const end = events.find((e) => e.reason === `image_rollout: ${V2}`);
      expect([start?.toStatus, end?.toStatus]).toEqual(['starting', 'running']);
      expect(end?.details).toEqual({ image_rollout: { image: V2, from: TEST_IMAGE } });
      spans.push({ start: start!.occurredAt.getTime(), end: end!.occurredAt.getTime() });
    }
    // Batches of two, one after the other: the second starts once the first has answered.
    expect(Math.max(spans[0]!.end, spans[1]!.end)).toBeLessThanOrEqual(Math.min(spans[2]!.start, spans[3]!.start));

    // A self-heal restart after the rollout keeps the rolled-out image (the worker's own is still TEST_IMAGE).
    const sick = users[0]!;
    writeFileSync(join(failDir, sick), '');
    await untilStatus(handleOf(sick), 'a self-heal restart', (s) => s.state === 'starting', { timeoutMs: 20_000 });
    unlinkSync(join(failDir, sick));
    await untilStatus(handleOf(sick), 'recovered', (s) => s.state === 'running' && s.reason === 'recovered');
    expect(await flyImage(sick)).toBe(V2);
  });

  test('a broken image: the first machine rolls back and is healthy, the rollout pauses and says why; resume goes on', async () => {
    const request = { fly: h.stack.fly, taskQueue: h.taskQueue, image: BROKEN, batchSize: 1, maxFailures: 1 };
    const first = await ensureImageRollout(h.server.client, request);
    expect(first).toMatchObject({ workflowId: imageRolloutWorkflowId(BROKEN), outcome: 'started' });
    const paused = await untilRollout(first.workflowId, 'the rollout to pause', (s) => s.paused);
    const victim = users[0]!;
    expect(paused).toEqual({
      image: BROKEN,
      total: 4,
      updated: 0,
      rolledBack: 1,
      failed: 0,
      skipped: 0,
      pending: 3,
      paused: true,
      pausedBy: 'failures',
      done: false,
      failures: [
        {
          workflowId: machineWorkflowId(victim),
          machineId: (await handleOf(victim).query(statusQuery)).machineId,
          outcome: 'rolled_back',
          detail: expect.stringMatching(/^runtime did not become healthy within 6 s/),
        },
      ],
    });
    // Back on its previous image, healthy; the others were never touched.
    expect(await flyImage(victim)).toBe(V2);
    expect(await healthStatus(victim)).toBe(200);
    expect((await handleOf(victim).query(statusQuery)).state).toBe('running'); // its renewals go on
    const events = (await h.stack.db.store.listMachineEvents(victim)).reverse().map((e) => [e.toStatus, e.reason]);
    const failedAt = events.findIndex(([, r]) => r?.startsWith(`image_rollout: ${BROKEN} failed (`));
    expect(events.slice(failedAt - 1, failedAt + 2)).toEqual([
      ['starting', `image_rollout: updating to ${BROKEN}`],
      ['starting', expect.stringMatching(new RegExp(`^image_rollout: .* failed \\(.*\\); rolling back to ${V2}$`))],
      ['running', `image_rollout: rolled back to ${V2} (${BROKEN} failed)`],
    ]);
    for (const u of users.slice(1)) expect(await flyImage(u)).toBe(V2);
    // Its next self-heal restart keeps the image it was rolled back to, not the worker's (TEST_IMAGE).
    writeFileSync(join(failDir, victim), '');
    await untilStatus(handleOf(victim), 'a self-heal restart', (s) => s.state === 'starting', { timeoutMs: 20_000 });
    unlinkSync(join(failDir, victim));
    await untilStatus(handleOf(victim), 'recovered', (s) => s.state === 'running' && s.reason === 'recovered');
    expect(await flyImage(victim)).toBe(V2);
    const { currentDetails } = await h.server.client.workflow
      .getHandle(first.workflowId)
      .query<{ currentDetails: string }>('__temporal_workflow_metadata');
    expect(currentDetails).toMatch(
      /1 rolled back.* · paused after 1 failure: signal resumeRollout to go on · last failure/,
    );

    // Starting it again (a worker restart, an operator) is the same rollout.
    expect(await ensureImageRollout(h.server.client, request)).toEqual({
      ...first,
      outcome: 'joined',
      detail: expect.any(String),
    });
    expect((await rollout({ image: BROKEN })).firstExecutionRunId).toBe(first.runId);

    // Resume: the next machine is tried (and rolled back too), and the fresh failure budget pauses it again.
    const handle = h.server.client.workflow.getHandle(first.workflowId);
    await handle.signal(resumeRolloutSignal);
    const again = await untilRollout(first.workflowId, 'a second rollback', (s) => s.rolledBack === 2 && s.paused);
    expect(again).toMatchObject({ updated: 0, pending: 2, pausedBy: 'failures' });
    expect(await flyImage(users[1]!)).toBe(V2);
    expect(await healthStatus(users[1]!)).toBe(200);
    await handle.cancel(); // an operator abandons it
  });

  test('an operator pauses and resumes a good rollout; a closed rollout is not repeated at worker start', async () => {
    const handle = await rollout({ image: V3, batchSize: 1 });
    await handle.signal(pauseRolloutSignal);
    // Paused before or after its listing (whichever the signal met), it holds once it has listed.
    const paused = await untilRollout(handle.workflowId, 'the operator pause', (s) => s.paused && s.total === 4);
    expect(paused).toMatchObject({ pausedBy: 'operator', rolledBack: 0 });
    expect(paused.updated).toBeLessThanOrEqual(1); // the batch in flight when the signal came finishes
    await sleep(1500);
    expect(await handle.query(rolloutStatusQuery)).toEqual(paused);
    await handle.signal(resumeRolloutSignal);
    expect(await handle.result()).toMatchObject({ updated: 4, pending: 0, paused: false, done: true });
    for (const u of users) expect(await flyImage(u)).toBe(V3);

    const start = { fly: h.stack.fly, taskQueue: h.taskQueue };
    expect(await ensureImageRollout(h.server.client, { ...start, image: V3 })).toMatchObject({ outcome: 'none' });
    expect(await ensureImageRollout(h.server.client, { ...start, image: V2 })).toMatchObject({ outcome: 'closed' });
  });
});
