import { mintUserToken } from '../activities/credentials';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { machineAddress } from '../activities/fly/client';
import { liveMachinesOf, TEST_JWT_SECRET } from '../test/machine-stack';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

const expectProblem = (res: { status: number; headers: Headers; json: Record<string, unknown> }, status: number) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: 'about:blank', status, detail: expect.any(String) });
  expect(res.json.requestId).toEqual(expect.any(String));
};

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

  test('missing, expired, forged, wrong-audience and malformed tokens are 401 problems', async () => {
    const userId = await api.createUser('elite');
    const hs = (claims: Record<string, unknown>, secret = TEST_JWT_SECRET) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
    const now = Math.floor(Date.now() / 1000);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: userId, aud: 'authenticated', exp: now + 600 }),
    ).toString('base64url')}.`;
    const bad: Record<string, string | undefined> = {
      missing: undefined,
      expired: await api.token(userId, { ttlSeconds: -30 }),
      forged: await api.token(userId, { secret: 'another-secret-that-is-at-least-32-chars' }),
      wrongAudience: await api.token(userId, { audience: 'anon' }),
      noExpiry: await hs({ sub: userId, aud: 'authenticated' }),
      notAUserId: await hs({ sub: 'service_role', aud: 'authenticated', exp: now + 600 }),
      algNone: none,
      garbage: 'not-a-jwt',
      // Signed with the project's secret, but not a user's login:
      anonKey: await api.token(userId, { claims: { role: 'anon' } }),
      serviceRoleKey: await api.token(userId, { claims: { role: 'service_role' } }),
      noRole: await hs({ sub: userId, aud: 'authenticated', exp: now + 600 }),
      machineToken: (await mintUserToken({ jwtSecret: TEST_JWT_SECRET, userId, ttlSeconds: 600 })).token,
      hundredYears: await api.token(userId, { ttlSeconds: 100 * 365 * 86_400 }),
    };
    for (const [name, token] of Object.entries(bad)) {
      for (const [method, path] of [
        ['POST', '/v1/machines'],
        ['GET', '/v1/machines/me'],
        ['POST', '/v1/machines/me/stop'],
      ] as const) {
        const res = await api.call(method, path, { token });
        try {
          expectProblem(res, 401);
        } catch (err) {
          throw new Error(`${name} token on ${method} ${path}: ${(err as Error).message}`);
        }
      }
    }
    const details = async (name: string) =>
      (await api.call('GET', '/v1/machines/me', { token: bad[name] })).json.detail;
    expect(await details('serviceRoleKey')).toBe("invalid access token: role service_role is not a user's");
    expect(await details('machineToken')).toBe('invalid access token: a token minted for a machine is not a login');
    expect(await details('hundredYears')).toMatch(/^invalid access token: lifetime \d+ s is longer than the 86400 s/);
    const expired = await api.call('GET', '/v1/machines/me', { token: bad.expired });
    expect(expired.json.detail).toMatch(/expired/);
    expect(expired.headers.get('www-authenticate')).toMatch(/^Bearer/);
    // Nothing was started by any of them.
    await expect(api.server.client.workflow.getHandle(machineWorkflowId(userId)).describe()).rejects.toThrow();
  });

  test('with SUPABASE_URL the issuer must be the project’s; API_MAX_TOKEN_LIFETIME bounds a token’s life', async () => {
    const userId = await api.createUser('elite');
    const project = await api.startApp({ SUPABASE_URL: 'https://abcd.supabase.co', API_MAX_TOKEN_LIFETIME: '2 hours' });
    const get = async (claims: Record<string, unknown>, ttlSeconds = 3600) =>
      api.call('GET', '/v1/machines/me', { base: project.url, token: await api.token(userId, { claims, ttlSeconds }) });
    const foreign = await get({ iss: 'https://evil.supabase.co/auth/v1' });
    expectProblem(foreign, 401);
    expect(foreign.json.detail).toBe(
      "invalid access token: issuer https://evil.supabase.co/auth/v1 is not this project's",
    );
    expectProblem(await get({}), 401); // no issuer at all
    // The project's own issuer passes auth (404: this user has no machine yet).
    expect((await get({ iss: 'https://abcd.supabase.co/auth/v1' })).status).toBe(404);
    expect((await get({ iss: 'https://abcd.supabase.co/auth/v1' }, 3 * 3600)).json.detail).toMatch(/lifetime/);
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

  test('/metrics is not public: loopback only by default, a bearer token when API_METRICS_TOKEN is set', async () => {
    const scraped = await api.startApp({ API_METRICS_TOKEN: 'metrics-token-0123456789' });
    expectProblem(await api.call('GET', '/metrics', { base: scraped.url }), 401);
    expectProblem(await api.call('GET', '/metrics', { base: scraped.url, token: 'metrics-token-wrong-0123' }), 401);
    const ok = await api.call('GET', '/metrics', { base: scraped.url, token: 'metrics-token-0123456789' });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('api_http_requests_total');
  });

  test('malformed JSON and invalid bodies are 400 problems that say what is wrong', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const malformed = await api.call('POST', '/v1/machines', { token, rawBody: '{"region": "ams",' });
    expectProblem(malformed, 400);
    expect(malformed.json.detail).toMatch(/JSON/);

    const cases: [unknown, string][] = [
      [{ region: 'AMS' }, 'region'],
      [{ region: 'amsterdam' }, 'region'],
      [{ cpuPriority: 'turbo' }, 'cpuPriority'],
      [{ userId: '00000000-0000-0000-0000-000000000001' }, ''], // the user is the token's, never the body's
      [[], ''],
      ['ams', ''],
    ];
    for (const [body, path] of cases) {
      const res = await api.call('POST', '/v1/machines', { token, body });
      expectProblem(res, 400);
      if (path) expect(res.json.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    }
    const wrongType = await api.call('POST', '/v1/machines', {
      token,
      rawBody: 'region=ams',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(wrongType, 415);
    // None of them started anything.
    expectProblem(await api.call('GET', '/v1/machines/me', { token }), 404);
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

  test('the rate limit is per user and answers 429 problem+json', async () => {
    const limited = await api.startApp({ API_RATE_LIMIT_MAX: '3', API_RATE_LIMIT_WINDOW: '1 minute' });
    const x = await api.token(await api.createUser('elite'));
    const y = await api.token(await api.createUser('elite'));
    for (let i = 0; i < 3; i++)
      expect((await api.call('GET', '/v1/machines/me', { token: x, base: limited.url })).status).toBe(404);
    const over = await api.call('GET', '/v1/machines/me', { token: x, base: limited.url });
    expectProblem(over, 429);
    expect(over.headers.get('retry-after')).toEqual(expect.any(String));
    // Another user (same IP) has their own budget.
    expect((await api.call('GET', '/v1/machines/me', { token: y, base: limited.url })).status).toBe(404);
  });

  test('operations: OpenAPI, health, metrics, unknown routes, the dashboard page', async () => {
    const openapi = await api.call('GET', '/openapi.json');
    expect(openapi.status).toBe(200);
    expect(openapi.json.openapi).toBe('3.1.0');
    const doc = openapi.json as {
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/machines',
        '/v1/machines/me',
        '/v1/machines/me/stop',
        '/v1/machines/me/stream',
        '/v1/webhooks/billing',
      ]),
    );
    expect(doc.components.schemas.ProvisionRequest?.properties).toHaveProperty('region');
    expect(doc.components.schemas.BillingEvent).toBeDefined();

    const health = await api.call('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ ok: true, temporal: { ok: true }, store: { ok: true } });

    const metrics = await api.call('GET', '/metrics');
    expect(metrics.text).toMatch(/api_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(metrics.text).toContain('api_http_request_duration_seconds_bucket');
    expect(metrics.text).toContain('api_stream_connections');

    expectProblem(await api.call('GET', '/nope'), 404);

    const page = await api.call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.text).toContain('dashboard.js');
    expect((await api.call('GET', '/dashboard.js')).status).toBe(200);
    expect(page.headers.get('x-request-id')).toEqual(expect.any(String));
    const traced = await api.call('GET', '/healthz', { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(traced.headers.get('x-request-id')).toBe('trace-abc-123');
  });
});
