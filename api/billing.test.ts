import { randomUUID } from 'node:crypto';
import { sleep } from '../test/kit/wait';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, TEST_WEBHOOK_SECRET, type ApiStack } from './test-support/api-stack';
import { signWebhook } from './webhooks';

jest.setTimeout(180_000);

const GRACE_MS = 10_000;

/** `ms` written as an ISO instant with the given offset and, optionally, no milliseconds (as Python and Go send them). */
function isoWithOffset(ms: number, offsetMinutes: number, withMillis = true): string {
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().replace('Z', '');
  const body = withMillis ? local : local.replace(/\.\d{3}$/, '');
  if (offsetMinutes === 0) return `${body}Z`;
  const sign = offsetMinutes > 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  return `${body}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * Billing that cannot be gamed (issue 14), each finding reproduced from outside on the real stack:
 * Temporal dev server, Postgres, the API, machines as real processes (fly-local). Billing state lives
 * in billing_accounts; the workflow re-reads it, so no run can forget or re-apply an event.
 */
describe('billing state is the user’s, not a run’s (real Temporal, Postgres, API, fly-local)', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack({
      env: { MACHINE_PAYMENT_GRACE_PERIOD: `${GRACE_MS / 1000} seconds`, API_RATE_LIMIT_MAX: '100000' },
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  const send = (event: Record<string, unknown>) => {
    const body = JSON.stringify(event);
    return api.call('POST', '/v1/webhooks/billing', {
      rawBody: body,
      headers: { 'x-signature': signWebhook(TEST_WEBHOOK_SECRET, body) },
    });
  };
  const event = (userId: string, type: string, occurredAt: string | number = Date.now(), extra = {}) => ({
    id: `evt_${randomUUID()}`,
    type,
    userId,
    occurredAt: typeof occurredAt === 'number' ? new Date(occurredAt).toISOString() : occurredAt,
    ...extra,
  });
  const stopAndWait = async (token: string) => {
    expect((await api.call('POST', '/v1/machines/me/stop', { token })).status).toBe(202);
    return api.waitForStatus(token, (s) => s.state === 'stopped');
  };

  test('stop + start during the grace period keeps the original grace end; after it, the machine stops and provision is 402', async () => {
    const { userId, token } = await api.runningUser();
    const failedAt = Date.now();
    const graceEnd = new Date(failedAt + GRACE_MS).toISOString();
    expect((await send(event(userId, 'payment.failed', failedAt))).json).toMatchObject({ status: 'applied' });
    await api.waitForStatus(token, (s) => s.paymentGraceEndsAt === graceEnd);

    // The dodge: stop, then start again before the grace period ends.
    await stopAndWait(token);
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    const again = await api.waitForStatus(token, (s) => s.state === 'running');
    expect(again).toMatchObject({ paymentState: 'overdue', paymentGraceEndsAt: graceEnd });

    // The new run stops the machine when the original grace period ends, not a fresh one later.
    const stopped = await api.waitForStatus(token, (s) => s.state === 'stopped', GRACE_MS + 30_000);
    expect(stopped.reason).toBe('payment_overdue');
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(graceEnd));
    expect(stopped).toMatchObject({ entitled: false, paymentState: 'overdue', paymentGraceEndsAt: graceEnd });

    const refused = await api.call('POST', '/v1/machines', { token });
    expect(refused.status).toBe(402);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.json.detail).toBe(
      `payment overdue since ${new Date(failedAt).toISOString()}, grace ended ${graceEnd}`,
    );
  });

  test('a replayed old payment.failed after recovery changes nothing, even in a later run', async () => {
    const { userId, token } = await api.runningUser();
    const t0 = Date.now();
    const failed = event(userId, 'payment.failed', t0);
    expect((await send(failed)).json).toMatchObject({ status: 'applied' });
    expect((await send(event(userId, 'payment.recovered', t0 + 1))).json).toMatchObject({ status: 'applied' });

    // A later run: stop and start again, then the provider resends the failure (same id), and an
    // older failure it never sent before (new id, older instant) arrives too.
    await stopAndWait(token);
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    await api.waitForStatus(token, (s) => s.state === 'running');
    expect((await send(failed)).json).toMatchObject({ status: 'duplicate' });
    const older = await send(event(userId, 'payment.failed', t0 - 3_600_000));
    expect(older.json).toMatchObject({ status: 'ignored', detail: expect.stringMatching(/^older than the payment/) });

    // Had either applied, the grace period would already be over and the machine stopping.
    await sleep(GRACE_MS + 2_000);
    expect(await api.waitForStatus(token, () => true)).toMatchObject({
      state: 'running',
      paymentState: 'ok',
      paymentGraceEndsAt: null,
    });
  });

  test('an ancient downgrade is ignored when the stored state is newer (profile or account)', async () => {
    const { userId, token, status } = await api.runningUser();
    // Older than the profile the app changed at sign-up: the profile wins.
    const ancient = await send(event(userId, 'tier.changed', '2019-06-01T00:00:00Z', { tier: 'free' }));
    expect(ancient.json).toMatchObject({ status: 'applied', delivered: true });
    // Older than the account's last tier change: ignored outright.
    expect((await send(event(userId, 'tier.changed', Date.now(), { tier: 'elite' }))).json).toMatchObject({
      status: 'applied',
    });
    const stale = await send(event(userId, 'tier.changed', Date.now() - 86_400_000, { tier: 'free' }));
    expect(stale.json).toMatchObject({
      status: 'ignored',
      detail: expect.stringMatching(/^older than the tier change/),
    });

    await sleep(1_500);
    expect(await api.waitForStatus(token, () => true)).toMatchObject({
      state: 'running',
      tier: 'elite',
      entitled: true,
      machineId: status.machineId,
    });
    const { rows } = await api.stack.db.pool.query(
      `select reason from public.machine_events where user_id = $1 and reason in ('downgraded')`,
      [userId],
    );
    expect(rows).toEqual([]);
  });

  test('offset and millisecond-less timestamps are ordered as instants, not as strings', async () => {
    const { userId, token } = await api.runningUser();
    // A whole second just ahead, so the grace period a failure opens has not ended while we look.
    const t = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    // Recovered at t (UTC, no milliseconds); a failure 30 min earlier written in +02:00 sorts after it as a string.
    expect((await send(event(userId, 'payment.recovered', isoWithOffset(t, 0, false)))).json).toMatchObject({
      status: 'applied',
    });
    const earlierInPlus2 = isoWithOffset(t - 30 * 60_000, 120, false);
    expect(earlierInPlus2 > isoWithOffset(t, 0, false)).toBe(true);
    expect((await send(event(userId, 'payment.failed', earlierInPlus2))).json).toMatchObject({ status: 'ignored' });
    // A failure half a second after t, with milliseconds, sorts before "…:00Z" as a string, yet is newer.
    const laterWithMillis = isoWithOffset(t + 500, 0, true);
    expect(laterWithMillis < isoWithOffset(t, 0, false)).toBe(true);
    const later = await send(event(userId, 'payment.failed', laterWithMillis));
    expect(later.json).toMatchObject({ status: 'applied', detail: expect.stringMatching(/grace period ends/) });
    // …and one in -05:00 a second later still counts as the newer event (a second failure: grace unchanged).
    const again = await send(event(userId, 'payment.failed', isoWithOffset(t + 1500, -300, true)));
    expect(again.json).toMatchObject({ status: 'applied', detail: expect.stringMatching(/grace period unchanged/) });
    const s = await api.waitForStatus(token, (x) => x.paymentState === 'overdue');
    expect(s).toMatchObject({ state: 'running', paymentGraceEndsAt: new Date(t + 500 + GRACE_MS).toISOString() });

    const { rows } = await api.stack.db.pool.query(
      'select last_payment_event_at from public.billing_accounts where user_id = $1',
      [userId],
    );
    expect(rows[0].last_payment_event_at.getTime()).toBe(t + 1500);
  });

  test('the same event delivered 20 times at once: one row, one effect', async () => {
    const { userId, token } = await api.runningUser();
    const failed = event(userId, 'payment.failed');
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(failed)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const statuses = answers.map((a) => a.json.status).sort();
    expect(statuses).toEqual(['applied', ...Array(19).fill('duplicate')]);

    const { rows } = await api.stack.db.pool.query(
      'select count(*)::int as n from public.webhook_events where id = $1',
      [failed.id],
    );
    expect(rows[0].n).toBe(1);
    await api.waitForStatus(token, (s) => s.paymentState === 'overdue');
    await sleep(1_000); // 20 nudges: each re-reads, none may record a second notice
    const notices = await api.stack.db.pool.query(
      `select reason from public.machine_events where user_id = $1 and reason like 'payment_failed:%'`,
      [userId],
    );
    expect(notices.rows).toHaveLength(1);
  });

  test('a machine billing stopped starts again when the payment recovers; one the user stopped does not', async () => {
    // Billing stopped it: a failure whose grace period is almost over.
    const a = await api.runningUser();
    await send(event(a.userId, 'payment.failed', Date.now() - GRACE_MS + 1_000));
    await api.waitForStatus(a.token, (s) => s.state === 'stopped' && s.reason === 'payment_overdue');
    expect((await api.call('POST', '/v1/machines', { token: a.token })).status).toBe(402);
    const recovered = await send(event(a.userId, 'payment.recovered'));
    expect(recovered.json).toMatchObject({ status: 'applied', delivered: false, restarted: true });
    const back = await api.waitForStatus(a.token, (s) => s.state === 'running');
    expect(back).toMatchObject({ region: a.status.region, paymentState: 'ok', entitled: true });

    // The user stopped it during the grace period: recovery leaves it stopped.
    const b = await api.runningUser();
    await send(event(b.userId, 'payment.failed'));
    await stopAndWait(b.token);
    const res = await send(event(b.userId, 'payment.recovered'));
    expect(res.json).toMatchObject({ status: 'applied', delivered: false });
    expect(res.json.restarted).toBeUndefined();
    const handle = api.server.client.workflow.getHandle(machineWorkflowId(b.userId));
    expect((await handle.describe()).status.name).toBe('COMPLETED');
  });

  test('an event for a user with no workflow is kept and counts at the next provision', async () => {
    const userId = await api.createUser('elite');
    const token = await api.token(userId);
    const failedAt = Date.now() - GRACE_MS - 1_000; // its grace period is already over
    expect((await send(event(userId, 'payment.failed', failedAt))).json).toMatchObject({
      status: 'applied',
      delivered: false,
    });
    const refused = await api.call('POST', '/v1/machines', { token });
    expect(refused.status).toBe(402);
    expect(refused.json.detail).toMatch(/^payment overdue since .*, grace ended /);
  });
});
