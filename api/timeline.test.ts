import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { z } from 'zod';
import { createCloudExecutionClient, type TimelinePage, type Uptime } from '../client';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, TEST_WEBHOOK_SECRET, type ApiStack } from './test-support/api-stack';
import { timelinePageSchema, uptimeResponseSchema } from './timeline';
import { signWebhook } from './webhooks';

jest.setTimeout(120_000);

// The client re-declares the answers (it bundles no server code): what the API sends must be what it reads.
type Fits<A, B> = [A] extends [B] ? true : false;
const fits: [
  Fits<z.infer<typeof timelinePageSchema>, TimelinePage>,
  Fits<z.infer<typeof uptimeResponseSchema>, Uptime>,
] = [true, true];

type Entry = { at: string; kind: string; code: string; text: string; details: Record<string, unknown> };

/**
 * GET /v1/machines/me/timeline and /uptime against the real stack (Temporal dev server, Postgres, fly-local):
 * real transitions written by the workflow, billing events through the signed webhook, and RLS deciding what
 * each caller sees, down to the SQL view.
 */
describe('API: my timeline and my uptime', () => {
  let api: ApiStack;
  let a: { userId: string; token: string };
  let b: { userId: string; token: string };
  const aEvents: string[] = [];

  const webhook = async (userId: string, type: string, extra: Record<string, unknown> = {}) => {
    const event = { id: `evt_${randomUUID()}`, type, userId, occurredAt: new Date().toISOString(), ...extra };
    const body = JSON.stringify(event);
    const res = await api.call('POST', '/v1/webhooks/billing', {
      rawBody: body,
      headers: { 'x-signature': signWebhook(TEST_WEBHOOK_SECRET, body) },
    });
    expect(res.status).toBe(200);
    return { id: event.id, status: res.json.status };
  };
  /** Every page of a timeline, following `next`. */
  const allPages = async (token: string, limit: number) => {
    const entries: Entry[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const res = await api.call(
        'GET',
        `/v1/machines/me/timeline?limit=${limit}${next ? `&before=${encodeURIComponent(next)}` : ''}`,
        { token },
      );
      expect(res.status).toBe(200);
      const page = timelinePageSchema.parse(res.json);
      entries.push(...page.entries);
      next = page.next;
      pages++;
    } while (next && pages < 50);
    return { entries, pages };
  };

  beforeAll(async () => {
    api = await createApiStack();
    // A: started, a payment failure (and an older one after it, ignored), stopped by the user.
    a = await api.runningUser();
    const failed = await webhook(a.userId, 'payment.failed');
    const older = await webhook(a.userId, 'payment.failed', {
      occurredAt: new Date(Date.now() - 3_600_000).toISOString(),
    });
    expect([failed.status, older.status]).toEqual(['applied', 'ignored']);
    aEvents.push(failed.id, older.id);
    await api.waitForStatus(a.token, (s) => s.paymentState === 'overdue');
    expect((await api.call('POST', '/v1/machines/me/stop', { token: a.token })).status).toBe(202);
    await api.waitForStatus(a.token, (s) => s.state === 'stopped');
    // B: running, with a tier event of their own.
    b = await api.runningUser();
    await webhook(b.userId, 'tier.changed', { tier: 'elite' });
  });
  afterAll(async () => api?.close());

  test('the timeline: newest first, every entry with a code and a sentence, paged without gaps or repeats', async () => {
    const { entries, pages } = await allPages(a.token, 3);
    expect(pages).toBeGreaterThan(2);
    const { entries: whole } = await allPages(a.token, 200);
    expect(entries).toEqual(whole);
    const ats = entries.map((e) => Date.parse(e.at));
    expect([...ats].sort((x, y) => y - x)).toEqual(ats);

    const codes = entries.map((e) => `${e.kind}/${e.code}`);
    for (const c of [
      'lifecycle/start_requested',
      'lifecycle/machine_created',
      'lifecycle/healthy',
      'lifecycle/payment_failed',
      'billing/payment_failed',
      'billing/billing_older',
      'lifecycle/user_requested',
    ])
      expect(codes).toContain(c);
    const ignored = entries.find((e) => e.code === 'billing_older')!;
    expect(ignored.text).toMatch(/^Payment failure ignored: .*older than the payment event already applied/);
    expect(ignored.details).toMatchObject({ eventId: aEvents[1], outcome: 'ignored' });
    expect(entries.find((e) => e.code === 'user_requested')!.text).toBe(
      'Stopped: the user stopped the machine (Stop, POST /v1/machines/me/stop).',
    );
  });

  test('RLS: A never sees B’s rows, nor B A’s — through the API and in the database itself', async () => {
    const { entries: mine } = await allPages(a.token, 50);
    const { entries: theirs } = await allPages(b.token, 50);
    const isA = (e: Entry) =>
      e.kind === 'billing'
        ? aEvents.includes(e.details.eventId as string)
        : e.details.workflowId === machineWorkflowId(a.userId);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every(isA)).toBe(true);
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.some(isA)).toBe(false);

    // As A under RLS (what PostgREST does with A's token): B's id gives nothing; B's rows do not exist.
    const asA = async <T>(work: (c: pg.PoolClient) => Promise<T>) => {
      const c = await api.stack.db.pool.connect();
      try {
        await c.query('begin');
        await c.query(`select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)`, [
          JSON.stringify({ sub: a.userId, role: 'authenticated' }),
        ]);
        return await work(c);
      } finally {
        await c.query('rollback');
        c.release();
      }
    };
    const stolen = await asA(async (c) => ({
      page: (await c.query('select * from public.machine_timeline_page($1, 200)', [b.userId])).rowCount,
      view: (await c.query('select distinct user_id from public.machine_timeline')).rows.map((r) => r.user_id),
      uptime: (
        await c.query('select * from public.uptime_records($1::uuid[], $2, $3)', [[b.userId], new Date(0), new Date()])
      ).rowCount,
    }));
    expect(stolen).toEqual({ page: 0, view: [a.userId], uptime: 0 });
    // A user reads their billing events' outcomes, never the provider's payload.
    await expect(asA((c) => c.query('select payload from public.webhook_events'))).rejects.toThrow(/permission denied/);
  });

  test('the uptime: today’s minutes by cause and the month against the SLO', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const res = await api.call('GET', `/v1/machines/me/uptime?from=${today}&to=${today}`, { token: a.token });
    expect(res.status).toBe(200);
    const u = uptimeResponseSchema.parse(res.json);
    expect(u.days).toHaveLength(1);
    // Seconds of machine life in a test: every minute is counted once, none twice.
    const d = u.days[0]!;
    expect(d.entitledMinutes).toBe(d.healthyMinutes + d.down.ours + d.down.fly + d.down.user);
    expect(d.down.billing).toBe(0);
    expect(u.policy).toMatchObject({ sloPercent: 99.5, creditTable: expect.any(Array) });
    expect(u.months[0]).toMatchObject({ month: today.slice(0, 7), days: 1, partial: true });
    // The default range: this month so far.
    const month = await api.call('GET', '/v1/machines/me/uptime', { token: b.token });
    expect(month.status).toBe(200);
    expect((month.json.days as unknown[]).length).toBe(Number(today.slice(8, 10)));
  });

  test('the client library (the page’s only way in) reads both, and pages the timeline', async () => {
    expect(fits).toEqual([true, true]);
    const client = createCloudExecutionClient({ baseUrl: api.url, getAccessToken: () => a.token });
    const first = await client.timeline({ limit: 2 });
    expect(first.entries).toHaveLength(2);
    const second = await client.timeline({ limit: 2, before: first.next! });
    expect(Date.parse(second.entries[0]!.at)).toBeLessThanOrEqual(Date.parse(first.entries[1]!.at));
    const today = new Date().toISOString().slice(0, 10);
    expect((await client.uptime({ from: today, to: today })).days).toHaveLength(1);
    await expect(client.uptime({ from: today, to: '2020-01-01' })).rejects.toMatchObject({
      status: 400,
      errors: [{ path: 'from', message: '`from` must not be after `to`' }],
    });
  });

  test('bad input: problem+json naming the parameter; no token: 401', async () => {
    const cases: [string, string][] = [
      ['/v1/machines/me/timeline?limit=0', 'limit'],
      ['/v1/machines/me/timeline?limit=201', 'limit'],
      ['/v1/machines/me/timeline?before=not-a-cursor', 'before'],
      ['/v1/machines/me/timeline?userId=someone-else', '(body)'],
      ['/v1/machines/me/uptime?from=2026-13-01', 'from'],
      ['/v1/machines/me/uptime?from=2026-03-10&to=2026-03-01', 'from'],
      ['/v1/machines/me/uptime?from=2026-01-01&to=2026-04-04', 'to'],
    ];
    for (const [path, param] of cases) {
      const res = await api.call('GET', path, { token: a.token });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect((res.json.errors as { path: string }[]).map((e) => e.path)).toContain(param);
    }
    for (const path of ['/v1/machines/me/timeline', '/v1/machines/me/uptime'])
      expect((await api.call('GET', path)).status).toBe(401);
  });
});
