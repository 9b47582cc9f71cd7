import { randomUUID } from 'node:crypto';
import { machineWorkflowId, type MachineStatus } from '../workflows/contract';
import { createApiStack, TEST_WEBHOOK_SECRET, type ApiStack } from './test-support/api-stack';
import { signWebhook, verifyWebhookSignature } from './webhooks';

jest.setTimeout(120_000);

const GRACE = '3 days';

describe('signature helpers', () => {
  test('the worked example of api/README.md', () => {
    const body =
      '{"id":"evt_1","type":"payment.failed","userId":"7d1c1f44-3b8e-4c1a-9a57-2f5e9c0d8b11","occurredAt":"2025-01-01T12:00:00Z"}';
    const header = signWebhook('whsec-example-secret-0123', body, 1735732800);
    expect(header).toBe('t=1735732800,v1=57876b43e20ec687a2b2da0277ccf509563e2c96452132c4c41f1a479aa74ab4');
    expect(() =>
      verifyWebhookSignature('whsec-example-secret-0123', header, Buffer.from(body), 1735732800 + 299),
    ).not.toThrow();
    expect(() =>
      verifyWebhookSignature('whsec-example-secret-0123', header, Buffer.from(body), 1735732800 + 301),
    ).toThrow(/tolerance/);
    expect(() =>
      verifyWebhookSignature('whsec-example-secret-0123', header, Buffer.from(`${body} `), 1735732800),
    ).toThrow(/mismatch/);
  });
});

describe('API: billing webhooks (real Temporal, Postgres, fly-local machines)', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack({ env: { MACHINE_PAYMENT_GRACE_PERIOD: GRACE } });
  });
  afterAll(async () => {
    await api?.close();
  });

  const send = (event: unknown, o: { secret?: string; t?: number; header?: string | null; raw?: string } = {}) => {
    const body = o.raw ?? JSON.stringify(event);
    const header = o.header === undefined ? signWebhook(o.secret ?? TEST_WEBHOOK_SECRET, body, o.t) : o.header;
    return api.call('POST', '/v1/webhooks/billing', {
      rawBody: body,
      headers: header === null ? {} : { 'x-signature': header },
    });
  };
  const event = (userId: string, type: string, extra: Record<string, unknown> = {}) => ({
    id: `evt_${randomUUID()}`,
    type,
    userId,
    occurredAt: new Date().toISOString(),
    ...extra,
  });

  const query = (token: string) =>
    api.call('GET', '/v1/machines/me', { token }).then((r) => r.json as unknown as MachineStatus);

  test('payment.failed opens the grace period (shown in the status); a replay is a duplicate; payment.recovered closes it', async () => {
    const { userId, token } = await api.runningUser();
    const failed = event(userId, 'payment.failed');
    const res = await send(failed);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'applied',
      detail: expect.stringMatching(/grace period ends/),
      delivered: true,
    });
    const expectedEnd = new Date(Date.parse(failed.occurredAt) + 3 * 24 * 3600_000).toISOString();
    const withGrace = await api.waitForStatus(token, (s) => s.paymentGraceEndsAt !== null);
    expect(withGrace).toMatchObject({ state: 'running', paymentGraceEndsAt: expectedEnd });

    // The same event again (a billing retry): answered as a duplicate, applied once.
    const replay = await send(failed);
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual({
      status: 'duplicate',
      detail: expect.stringMatching(/was received at .* \(applied: payment overdue/),
      delivered: true,
    });
    // The status is the workflow's records: its notice lands a moment after the nudge (no query waits for it).
    const after = await api.waitForStatus(token, (s) => s.recent.some((t) => t.reason?.startsWith('payment_failed')));
    expect(after.paymentGraceEndsAt).toBe(expectedEnd);
    expect(after.state).toBe('running');
    expect(after.recent.filter((t) => t.reason?.startsWith('payment_failed'))).toHaveLength(1);

    const recovered = await send(event(userId, 'payment.recovered'));
    expect(recovered.json).toMatchObject({ status: 'applied', detail: 'payment recovered; grace period closed' });
    await api.waitForStatus(token, (s) => s.paymentGraceEndsAt === null && s.state === 'running');
  });

  test('tier.changed to a non-elite tier stops the machine (reason downgraded)', async () => {
    const { userId, token } = await api.runningUser();
    const res = await send(event(userId, 'tier.changed', { tier: 'free' }));
    expect(res.json).toEqual({ status: 'applied', detail: 'tier free', delivered: true });
    await api.server.client.workflow.getHandle(machineWorkflowId(userId)).result();
    const stopped = await api.waitForStatus(token, (s) => s.state === 'stopped');
    expect(stopped.reason).toBe('downgraded');
  });

  test('bad signatures, stale or future timestamps are 401 and change nothing', async () => {
    const { userId, token, status } = await api.runningUser();
    const failed = event(userId, 'payment.failed');
    const body = JSON.stringify(failed);
    const now = Math.floor(Date.now() / 1000);
    const good = signWebhook(TEST_WEBHOOK_SECRET, body, now);
    const attempts: [string, Parameters<typeof send>[1]][] = [
      ['no header', { header: null }],
      ['malformed header', { header: 'sha256=abc' }],
      ['empty v1', { header: `t=${now},v1=` }],
      ['wrong secret', { secret: 'not-the-webhook-secret-at-all' }],
      ['stale timestamp', { t: now - 301 }],
      ['future timestamp', { t: now + 301 }],
      ['tampered body', { raw: body.replace('payment.failed', 'payment.recovered'), header: good }],
      ['signature of another timestamp', { header: good.replace(`t=${now}`, `t=${now - 1}`) }],
    ];
    for (const [name, o] of attempts) {
      const res = await send(failed, o);
      expect([name, res.status, res.headers.get('content-type')]).toEqual([
        name,
        401,
        expect.stringMatching(/^application\/problem\+json/),
      ]);
    }
    // Nothing applied, nothing recorded: the genuine event still arrives as new.
    const unchanged = await query(token);
    expect(unchanged).toMatchObject({ state: 'running', paymentGraceEndsAt: null, machineId: status.machineId });
    expect((await send(failed)).json).toMatchObject({ status: 'applied', delivered: true });

    const metrics = await api.call('GET', '/metrics');
    expect(metrics.text).toMatch(/api_webhooks_total\{type="unknown",result="bad_signature"\} \d+/);
    expect(metrics.text).toMatch(/api_webhooks_total\{type="payment.failed",result="applied"\} \d+/);
  });

  test('malformed, invalid and oversized bodies are rejected and recorded nowhere', async () => {
    const userId = await api.createUser('elite');
    const cases: [string, unknown][] = [
      ['{"id": "evt_x", "type":', 400],
      [JSON.stringify({ ...event(userId, 'subscription.deleted') }), 400],
      [JSON.stringify({ ...event(userId, 'tier.changed') }), 400], // no tier
      [JSON.stringify({ ...event(userId, 'tier.changed', { tier: 'platinum' }) }), 400],
      [JSON.stringify({ ...event('not-a-uuid', 'payment.failed') }), 400],
      [JSON.stringify({ ...event(userId, 'payment.failed', { occurredAt: 'yesterday' }) }), 400],
      [JSON.stringify({ type: 'payment.failed', userId, occurredAt: new Date().toISOString() }), 400], // no id
      [JSON.stringify({ ...event(userId, 'payment.failed'), padding: 'x'.repeat(70 * 1024) }), 413],
    ];
    for (const [raw, status] of cases) {
      const res = await send(undefined, { raw });
      expect([raw.slice(0, 60), res.status, res.headers.get('content-type')]).toEqual([
        raw.slice(0, 60),
        status,
        expect.stringMatching(/^application\/problem\+json/),
      ]);
    }
    const { rows } = await api.stack.db.pool.query(
      'select count(*)::int as n from public.webhook_events where user_id = $1',
      [userId],
    );
    expect(rows[0].n).toBe(0);
  });

  test('an event for a user with no running workflow is kept in the account, not delivered; tier.changed to elite provisions nothing', async () => {
    const userId = await api.createUser('free');
    const upgrade = event(userId, 'tier.changed', { tier: 'elite' });
    const res = await send(upgrade);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'applied', detail: 'tier elite', delivered: false });
    expect((await send(upgrade)).json).toMatchObject({ status: 'duplicate', delivered: false });
    const { rows } = await api.stack.db.pool.query(
      'select type, payload, outcome from public.webhook_events where id = $1',
      [upgrade.id],
    );
    expect(rows).toEqual([{ type: 'tier.changed', payload: upgrade, outcome: 'applied' }]);
    const { rows: account } = await api.stack.db.pool.query(
      'select tier, tier_changed_at from public.billing_accounts where user_id = $1',
      [userId],
    );
    expect(account).toEqual([{ tier: 'elite', tier_changed_at: new Date(upgrade.occurredAt) }]);
    // No machine appeared: the user starts one themselves (POST /v1/machines) once their tier is elite.
    await expect(api.server.client.workflow.getHandle(machineWorkflowId(userId)).describe()).rejects.toThrow();
    expect((await api.call('GET', '/v1/machines/me', { token: await api.token(userId) })).status).toBe(404);
  });

  test('without WEBHOOK_SECRET the webhook answers 503 and accepts nothing', async () => {
    const bare = await api.startApp({ WEBHOOK_SECRET: '' });
    const userId = await api.createUser('elite');
    const body = JSON.stringify(event(userId, 'payment.failed'));
    const res = await api.call('POST', '/v1/webhooks/billing', {
      base: bare.url,
      rawBody: body,
      headers: { 'x-signature': signWebhook(TEST_WEBHOOK_SECRET, body) },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
