import WebSocket from 'ws';
import { machineAddress } from '../fly/machines';
import { liveMachinesOf } from '../test/machine-stack';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, type ApiStack } from './test-support/api-stack';
import { expectProblem } from './test-support/problem';

jest.setTimeout(120_000);

// A machine's life through the API: provision, stop, who may have one, the cooldown, one user's against another's.
// Tokens, bodies, the rate limit and the operations routes are in machines-requests.test.ts.

/** Opens the stream like a browser does and resolves with how it ended. */
function openStream(wsUrl: string, token: string) {
  return new Promise<{ code: number; reason: string; status?: number }>((resolve) => {
    const ws = new WebSocket(`${wsUrl}/v1/machines/me/stream`, ['bearer', token]);
    ws.on('unexpected-response', (_req, res) => resolve({ code: 0, reason: '', status: res.statusCode }));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('error', () => undefined);
  });
}

describe('API: machines (real Temporal, Postgres, fly-local machines)', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack();
  });
  afterAll(async () => {
    await api?.close();
  });

  test('POST /v1/machines provisions to running: 202, Location, then the status walks to running', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const res = await api.call('POST', '/v1/machines', { token, body: { region: 'ams', cpuPriority: 'low' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe('/v1/machines/me');
    expect(res.json).toEqual({ workflowId: machineWorkflowId(userId), state: 'provisioning' });

    const status = await api.waitForStatus(token, (s) => s.state === 'running');
    expect(status).toMatchObject({
      userId,
      region: 'ams',
      tier: 'elite',
      source: 'workflow',
      workflowId: machineWorkflowId(userId),
      machineId: expect.any(String),
      lastHealthyAt: expect.any(String),
    });
    expect(status.recent.map((t) => t.state)).toEqual(['provisioning', 'starting', 'running']);

    // Search attributes set at start and kept current by the workflow.
    const d = await api.server.client.workflow.getHandle(machineWorkflowId(userId)).describe();
    expect(d.taskQueue).toBe(api.taskQueue);
    expect(d.searchAttributes).toMatchObject({ UserId: [userId], Region: ['ams'], MachineState: ['running'] });

    // Repeating the call is the same machine, answered with its current state.
    const again = await api.call('POST', '/v1/machines', { token });
    expect(again.status).toBe(202);
    expect(again.json).toEqual({ workflowId: machineWorkflowId(userId), state: 'running' });
    expect((await liveMachinesOf(api.stack.fly, userId)).map((m) => m.id)).toEqual([status.machineId]);
  });

  test('10 concurrent POSTs make one workflow and one machine', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const answers = await Promise.all(Array.from({ length: 10 }, () => api.call('POST', '/v1/machines', { token })));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    expect(new Set(answers.map((a) => a.json.workflowId))).toEqual(new Set([machineWorkflowId(userId)]));
    await api.waitForStatus(token, (s) => s.state === 'running');
    expect(await liveMachinesOf(api.stack.fly, userId)).toHaveLength(1);
    const runs = [];
    for await (const w of api.server.client.workflow.list({ query: `WorkflowId = '${machineWorkflowId(userId)}'` }))
      runs.push(w.runId);
    expect(runs).toHaveLength(1);
  });

  test('stop: 202, then stopped (status from the table), a second stop is 409, and a new POST starts a new run', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    const running = await api.waitForStatus(token, (s) => s.state === 'running');

    const stop = await api.call('POST', '/v1/machines/me/stop', { token });
    expect(stop.status).toBe(202);
    expect(stop.json).toMatchObject({ workflowId: machineWorkflowId(userId) });
    const handle = api.server.client.workflow.getHandle(machineWorkflowId(userId));
    await handle.result();

    const stopped = await api.waitForStatus(token, (s) => s.state === 'stopped');
    expect(stopped).toMatchObject({ source: 'table', reason: 'user_requested', userId, tier: 'elite' });
    expect(stopped.recent.map((t) => t.state)).toEqual(['provisioning', 'starting', 'running', 'stopping', 'stopped']);
    expect(await liveMachinesOf(api.stack.fly, userId)).toEqual([]);
    const events = await api.stack.db.store.listMachineEvents(userId);
    expect(events.find((e) => e.toStatus === 'stopping')?.reason).toBe('user_requested');

    expectProblem(await api.call('POST', '/v1/machines/me/stop', { token }), 409);

    // The finished workflow's id is reused: a second machine, under a new run.
    const firstRun = (await handle.describe()).runId;
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    const again = await api.waitForStatus(token, (s) => s.state === 'running' && s.machineId !== running.machineId);
    expect((await handle.describe()).runId).not.toBe(firstRun);
    expect(await liveMachinesOf(api.stack.fly, userId)).toHaveLength(1);
    expect(again.source).toBe('workflow');
  });

  test('non-elite users get 403 and no workflow', async () => {
    for (const tier of ['free', 'pro', 'anonymous'] as const) {
      const userId = await api.createUser(tier);
      const res = await api.call('POST', '/v1/machines', { token: await api.token(userId) });
      expectProblem(res, 403);
      expect(res.json.detail).toContain(tier);
      expectProblem(await api.call('GET', '/v1/machines/me', { token: await api.token(userId) }), 404);
    }
    // A valid token for a user with no profile at all.
    const stranger = '5b0c3a52-4d1e-4a8e-9a52-4b1f2a3c4d5e';
    expectProblem(await api.call('POST', '/v1/machines', { token: await api.token(stranger) }), 403);
  });

  test('a per-user cooldown between new machines: 429 with Retry-After; a repeated POST for a running one is fine', async () => {
    const cooled = await api.startApp({ API_PROVISION_COOLDOWN: '1 hour' });
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const post = () => api.call('POST', '/v1/machines', { base: cooled.url, token });
    expect((await post()).status).toBe(202);
    await api.waitForStatus(token, (s) => s.state === 'running');
    expect((await post()).status).toBe(202); // the same machine: idempotent, not a new start
    expect((await api.call('POST', '/v1/machines/me/stop', { base: cooled.url, token })).status).toBe(202);
    await api.waitForStatus(token, (s) => s.state === 'stopped');
    const again = await post();
    expectProblem(again, 429);
    expect(again.json.detail).toMatch(/^you started a machine \d+ s ago; start one again in \d+ s$/);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(3500);
    // Nothing was started by the refused call.
    expect((await api.server.client.workflow.getHandle(machineWorkflowId(userId)).describe()).status.name).toBe(
      'COMPLETED',
    );
  });

  test("user B can neither read, stop nor stream user A's machine; A's machine is unaffected", async () => {
    const a = await api.createUser('elite');
    const b = await api.createUser('elite');
    const tokenA = await api.token(a);
    const tokenB = await api.token(b);
    expect((await api.call('POST', '/v1/machines', { token: tokenA })).status).toBe(202);
    const before = await api.waitForStatus(tokenA, (s) => s.state === 'running');

    // Every way B might name A: the body, the query string, a header. The user is always B.
    expectProblem(await api.call('GET', '/v1/machines/me', { token: tokenB }), 404);
    expectProblem(await api.call('GET', `/v1/machines/me?userId=${a}`, { token: tokenB }), 404);
    expectProblem(await api.call('GET', '/v1/machines/me', { token: tokenB, headers: { 'x-user-id': a } }), 404);
    expectProblem(await api.call('POST', '/v1/machines/me/stop', { token: tokenB }), 404);
    expectProblem(await api.call('POST', '/v1/machines/me/stop', { token: tokenB, body: { userId: a } }), 404);
    expectProblem(await api.call('POST', '/v1/machines', { token: tokenB, body: { userId: a } }), 400);
    expectProblem(await api.call('GET', `/v1/machines/${a}`, { token: tokenB }), 404);
    const stream = await openStream(api.wsUrl, tokenB);
    expect(stream).toMatchObject({ code: 4404, reason: 'you have no running machine' });

    // A's machine is as it was: same machine, running, healthy, no stop anywhere in its history.
    const after = await api.waitForStatus(tokenA, (s) => s.state === 'running');
    expect(after.machineId).toBe(before.machineId);
    expect(after.recent.map((t) => t.state)).toEqual(['provisioning', 'starting', 'running']);
    const [machine] = await liveMachinesOf(api.stack.fly, a);
    expect((await fetch(`${machineAddress(machine!, 8080).origin}/health`)).status).toBe(200);
    expect(await liveMachinesOf(api.stack.fly, b)).toEqual([]);

    // Once B has a machine of their own, B sees that one and only that one.
    expect((await api.call('POST', '/v1/machines', { token: tokenB })).status).toBe(202);
    const mineB = await api.waitForStatus(tokenB, (s) => s.state === 'running');
    expect(mineB.userId).toBe(b);
    expect(mineB.machineId).not.toBe(before.machineId);
    expect(await liveMachinesOf(api.stack.fly, a)).toHaveLength(1);
  });
});
