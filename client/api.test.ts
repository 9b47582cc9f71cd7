import type { z } from 'zod';
import WebSocket from 'ws';
import type { MachineStatusResponse, provisionResponseSchema, stopResponseSchema } from '../api/machines';
import type { Options as ApiOptions } from '../api/options';
import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import { untilValue } from '../test/kit/wait';
import { createCloudExecutionClient, type CloudExecutionClient } from './api';
import { CloudExecutionError } from './errors';
import type { MachineStatus, Options, ProvisionResponse, StopResponse } from './schemas';
import type { ConnectionHealth, StopReason } from './stream';

jest.setTimeout(120_000);

// The client re-declares the API's response types (it must not bundle server code); these fail to
// compile the moment the two drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree: [
  Same<MachineStatus, MachineStatusResponse>,
  Same<ProvisionResponse, z.infer<typeof provisionResponseSchema>>,
  Same<StopResponse, z.infer<typeof stopResponseSchema>>,
  Same<Required<Options>, ApiOptions>, // `auth` is optional in the client only: older APIs lack it
] = [true, true, true, true];

/** Every 150 ms: each user's calls to the API are rate limited (60 a minute by default). */
const until = <T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 60_000) =>
  untilValue(what, read, ok, { timeoutMs, everyMs: 150 });

describe('the client against the real API (real machine runtime)', () => {
  let api: ApiStack;
  const clientFor = (token: string | null): CloudExecutionClient =>
    createCloudExecutionClient({ baseUrl: api.url, getAccessToken: () => token });

  beforeAll(async () => {
    api = await createApiStack({ realRuntime: true });
  });
  afterAll(async () => {
    await api?.close();
  });

  test('response types agree with the API', () => {
    expect(agree).toEqual([true, true, true, true]);
  });

  test('options: the start form’s choices and how a page signs in, without a token', async () => {
    const options = await clientFor(null).options();
    expect(options.regions[0]).toEqual({ code: options.defaults.region, name: expect.any(String) });
    expect(options.cpuPriorities.map((p) => p.value)).toContain(options.defaults.cpuPriority);
    expect(options.auth).toEqual({ supabase: null, devSignIn: false }); // the stack names no Supabase project
  });

  test('provision, status, live stream, stop: the whole flow', async () => {
    const userId = await api.createUser('elite');
    const client = clientFor(await api.token(userId));
    expect(client.streamUrl).toBe(`${api.wsUrl}/v1/machines/me/stream`);
    await expect(client.status()).resolves.toBeNull(); // never had a machine

    const started = await client.provision({ region: 'ams', cpuPriority: 'low' });
    expect(started).toEqual({ workflowId: `machine-${userId}`, state: 'provisioning' });
    await expect(client.provision()).resolves.toMatchObject({ workflowId: started.workflowId }); // idempotent

    const running = await until(
      'running',
      () => client.status(),
      (s) => s?.state === 'running',
    );
    expect(running).toMatchObject({ userId, region: 'ams', source: 'workflow', workflowId: started.workflowId });
    expect(running?.machineId).toEqual(expect.any(String));

    // The stream through the API's gateway to the real runtime (Node 20: the `ws` constructor).
    const stream = client.stream({ WebSocket });
    const seen: string[] = [];
    const states: ConnectionHealth['state'][] = [];
    stream.on('hello', (m) => seen.push(`hello:${m.userId}`));
    stream.on('state', (m) => seen.push(`state:${m.state.ok}`));
    stream.on('connection', (h) => states.push(h.state));
    stream.connect();
    await until(
      'hello and state',
      () => seen,
      (s) => s.includes(`hello:${userId}`) && s.some((x) => x.startsWith('state')),
    );
    const health = stream.getConnectionHealth();
    expect(health).toMatchObject({ state: 'open', isHealthy: true, roundTripSource: 'hello' });
    expect(health.roundTripMs).toBeGreaterThan(0);
    expect(health.metrics).toMatchObject({ connectionAttempts: 1, successfulConnections: 1, reconnections: 0 });

    const stopped = await client.stop();
    expect(stopped.workflowId).toBe(started.workflowId);
    // The runtime closes with 1001 as the machine stops: the client does not try to reconnect.
    await until(
      'stream closed',
      () => stream.getConnectionHealth().stopReason,
      (r) => r !== null,
      30_000,
    );
    expect(['machine_stopped', 'no_machine'] satisfies StopReason[]).toContain(stream.getConnectionHealth().stopReason);
    const final = await until(
      'stopped',
      () => client.status(),
      (s) => s?.state === 'stopped',
    );
    expect(final?.reason).toBe('user_requested');
    expect(stream.getConnectionHealth().metrics.connectionAttempts).toBe(1);
    expect(states.at(-1)).toBe('closed');
  });

  test("errors surface the problem's detail as a typed CloudExecutionError", async () => {
    const free = clientFor(await api.token(await api.createUser('free')));
    const err = await free.provision().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudExecutionError);
    expect(err).toMatchObject({
      status: 403,
      title: 'Forbidden',
      type: 'about:blank',
      detail: 'a cloud machine needs the elite tier; your tier is free',
      requestId: expect.any(String),
    });
    expect((err as Error).message).toBe((err as CloudExecutionError).detail);

    const bad = await free.provision({ region: 'Amsterdam' }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, detail: 'invalid request body' });
    expect((bad as CloudExecutionError).errors?.[0]?.path).toBe('region');

    const stopNothing = await free.stop().catch((e: unknown) => e);
    expect(stopNothing).toMatchObject({ status: 404, detail: 'you have no machine' });

    const anonymous = await clientFor(null)
      .status()
      .catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ status: 401, title: 'Unauthorized' });
    expect((anonymous as CloudExecutionError).detail).toMatch(/missing bearer token/);

    const expired = await clientFor(await api.token(await api.createUser(), { ttlSeconds: -60 }))
      .status()
      .catch((e: unknown) => e);
    expect(expired).toMatchObject({ status: 401 });

    const nowhere = createCloudExecutionClient({ baseUrl: 'http://127.0.0.1:9', getAccessToken: () => 't' });
    await expect(nowhere.status()).rejects.toMatchObject({ status: 0, title: 'Network error' });
  });

  test('the stream stops for a user with no machine (4404) and for a refused token (401)', async () => {
    const userId = await api.createUser('elite');
    const none = clientFor(await api.token(userId)).stream({ WebSocket, backoff: { initialMs: 20 } });
    none.connect();
    await until(
      'closed',
      () => none.state,
      (s) => s === 'closed',
      15_000,
    );
    expect(none.getConnectionHealth()).toMatchObject({ stopReason: 'no_machine', lastClose: { code: 4404 } });

    const forged = clientFor(await api.token(userId, { secret: 'not-the-project-secret-0123456789' })).stream({
      WebSocket,
      backoff: { initialMs: 20 },
    });
    forged.connect();
    await until(
      'closed',
      () => forged.state,
      (s) => s === 'closed',
      15_000,
    );
    expect(forged.getConnectionHealth()).toMatchObject({
      stopReason: 'unauthorized',
      metrics: { connectionAttempts: 1, failedConnections: 1 },
    });
  });
});
