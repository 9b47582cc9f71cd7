import { mintUserToken } from '../common/credentials';
import { SignJWT } from 'jose';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, type ApiStack } from './test-support/api-stack';
import { expectProblem } from './test-support/problem';

jest.setTimeout(120_000);

// What every request to the machine routes passes through: access tokens, issuer and lifetime, bodies, the
// per-user rate limit; and the operations routes. A machine's life is in machines.test.ts.

describe('API: machines (real Temporal, Postgres, fly-local machines)', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack();
  });
  afterAll(async () => {
    await api?.close();
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

  test('the rate limit is per user and answers 429 problem+json', async () => {
    const limited = await api.startApp({ API_RATE_LIMIT_MAX: '3', API_RATE_LIMIT_WINDOW: '1 minute' });
    const x = await api.token(await api.createUser('elite'));
    const y = await api.token(await api.createUser('elite'));
    for (let i = 0; i < 3; i++)
      expect((await api.call('GET', '/v1/traders', { token: x, base: limited.url })).status).toBe(200);
    const over = await api.call('GET', '/v1/traders', { token: x, base: limited.url });
    expectProblem(over, 429);
    expect(over.headers.get('retry-after')).toEqual(expect.any(String));
    // Another user (same IP) has their own budget.
    expect((await api.call('GET', '/v1/traders', { token: y, base: limited.url })).status).toBe(200);
  });

  test('status reads have their own budget: polling never makes POST /v1/machines answer 429', async () => {
    const limited = await api.startApp({ API_RATE_LIMIT_MAX: '3', API_RATE_LIMIT_WINDOW: '1 minute' });
    const token = await api.token(await api.createUser('elite'));
    const opts = { token, base: limited.url };
    // Far more status reads than the per-user budget of 3 (two tabs polling, say).
    for (let i = 0; i < 12; i++) expect((await api.call('GET', '/v1/machines/me', opts)).status).toBe(404);
    // Start still has its whole budget: a region not offered is a 400 (counted), never a 429 ...
    const bad = { ...opts, body: { region: 'nowhere' } };
    for (let i = 0; i < 3; i++) expectProblem(await api.call('POST', '/v1/machines', bad), 400);
    // ... until Start's own budget is spent; status reads still answer.
    expectProblem(await api.call('POST', '/v1/machines', bad), 429);
    expect((await api.call('GET', '/v1/machines/me', opts)).status).toBe(404);
    // The status budget (10× the per-user one) is a limit too.
    let status = 0;
    for (let i = 0; i < 30 && status !== 429; i++) status = (await api.call('GET', '/v1/machines/me', opts)).status;
    expect(status).toBe(429);
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
