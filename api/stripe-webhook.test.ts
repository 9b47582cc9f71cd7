import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { machineWorkflowId } from '../workflows/contract';
import { createApiStack, type ApiStack } from './test-support/api-stack';
import { expectProblem } from './test-support/problem';
import { stripeEvent, stripeId, stripeInvoice, stripeSubscription } from './test-support/stripe-fixtures';

jest.setTimeout(180_000);

// Two endpoint secrets, as while Stripe rolls one: either verifies.
const OLD_SECRET = 'whsec_old0123456789abcdefghijklmnopqr';
const NEW_SECRET = 'whsec_new0123456789abcdefghijklmnopqr';
const ELITE = 'price_1EliteMonthlyEUR';
const PRO = 'price_1ProMonthlyEUR';
const TOLERANCE = 120;
const GRACE_MS = 3 * 86_400_000;

/**
 * `POST /v1/webhooks/stripe` on the real stack (Temporal dev server, Postgres, fly-local machines):
 * events shaped as Stripe sends them, signed with the stripe package's own test helper.
 */
describe('API: Stripe webhooks (real Temporal, Postgres, fly-local machines)', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await createApiStack({
      env: {
        STRIPE_WEBHOOK_SECRET: `${OLD_SECRET},${NEW_SECRET}`,
        STRIPE_PRICE_TIERS: `${ELITE}:elite,${PRO}:pro`,
        STRIPE_WEBHOOK_TOLERANCE_SECONDS: String(TOLERANCE),
        MACHINE_PAYMENT_GRACE_PERIOD: '3 days',
      },
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  const send = (
    event: unknown,
    o: { secret?: string; timestamp?: number; header?: string | null; raw?: string; base?: string } = {},
  ) => {
    const payload = o.raw ?? JSON.stringify(event);
    const header =
      o.header !== undefined
        ? o.header
        : Stripe.webhooks.generateTestHeaderString({ payload, secret: o.secret ?? NEW_SECRET, timestamp: o.timestamp });
    return api.call('POST', '/v1/webhooks/stripe', {
      base: o.base,
      rawBody: payload,
      headers: header === null ? {} : { 'stripe-signature': header },
    });
  };
  /** Seconds a little ahead, so the event is newer than the profile the user was created with. */
  const at = (offsetSeconds = 0) => Math.ceil(Date.now() / 1000) + 1 + offsetSeconds;
  const recorded = async (eventId: string) =>
    (
      await api.stack.db.pool.query(
        'select type, user_id, outcome, outcome_detail, payload from public.webhook_events where id = $1',
        [`stripe:${eventId}`],
      )
    ).rows;
  const account = async (userId: string) =>
    (
      await api.stack.db.pool.query(
        'select tier, tier_changed_at, payment_state, grace_ends_at from public.billing_accounts where user_id = $1',
        [userId],
      )
    ).rows[0];
  const subscribe = (userId: string | null, customer: string, priceIds = [ELITE], status = 'active') =>
    stripeSubscription({ customer, priceIds, status, metadata: userId ? { user_id: userId } : {} });

  test('a subscription: created sets the tier (the user may start a machine), replay is a duplicate, an older update is ignored, deleted stops the machine', async () => {
    const userId = await api.createUser('free');
    const token = await api.token(userId);
    const customer = stripeId('cus');
    const t0 = at();
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(403);

    const created = stripeEvent('customer.subscription.created', subscribe(userId, customer), { created: t0 });
    const res = await send(created);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'applied', detail: 'tier elite', delivered: false });
    expect(await account(userId)).toMatchObject({ tier: 'elite', tier_changed_at: new Date(t0 * 1000) });
    const { rows: links } = await api.stack.db.pool.query(
      'select user_id, linked_by_event from public.stripe_customers where customer_id = $1',
      [customer],
    );
    expect(links).toEqual([{ user_id: userId, linked_by_event: `stripe:${created.id}` }]);
    expect(await recorded(created.id)).toEqual([
      expect.objectContaining({
        type: 'tier.changed',
        outcome: 'applied',
        payload: expect.objectContaining({
          tier: 'elite',
          stripe: {
            event: created.id,
            type: 'customer.subscription.created',
            object: created.data.object.id,
            customer,
          },
        }),
      }),
    ]);

    // Entitled now: the machine starts.
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    await api.waitForStatus(token, (s) => s.state === 'running' && s.tier === 'elite');

    // Stripe retries the same event: applied once, the workflow nudged again (a no-op).
    expect((await send(created)).json).toEqual({
      status: 'duplicate',
      detail: expect.stringMatching(
        /^event stripe:evt_\w+ was received at .* \(applied: tier elite\); nothing changed$/,
      ),
      delivered: true,
    });

    // Out of order: an update made later arrives first, then an older one (a cancellation) after it.
    const sub = created.data.object;
    const newer = stripeEvent('customer.subscription.updated', { ...sub, quantity: 1 }, { created: t0 + 20 });
    expect((await send(newer)).json).toMatchObject({ status: 'applied', detail: 'tier elite', delivered: true });
    const older = stripeEvent('customer.subscription.updated', { ...sub, status: 'canceled' }, { created: t0 + 10 });
    expect((await send(older)).json).toEqual({
      status: 'ignored',
      detail: expect.stringMatching(/^older than the tier change already applied \(elite at /),
      delivered: false,
    });
    expect(await api.waitForStatus(token, () => true)).toMatchObject({
      state: 'running',
      tier: 'elite',
      entitled: true,
    });

    const deleted = stripeEvent('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: t0 + 30 });
    expect((await send(deleted)).json).toEqual({ status: 'applied', detail: 'tier free', delivered: true });
    await api.server.client.workflow.getHandle(machineWorkflowId(userId)).result();
    const stopped = await api.waitForStatus(token, (s) => s.state === 'stopped');
    expect(stopped).toMatchObject({ reason: 'downgraded', tier: 'free', entitled: false });
  });

  test('invoices find the user through the customer: payment_failed opens the grace period, paid closes it', async () => {
    const { userId, token } = await api.runningUser();
    const customer = stripeId('cus');
    const t0 = at();
    const sub = subscribe(userId, customer);
    expect((await send(stripeEvent('customer.subscription.created', sub, { created: t0 }))).json).toMatchObject({
      status: 'applied',
    });

    // Invoices of this API version carry the subscription's metadata; these do not (created before it was set).
    const failed = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ customer, subscription: sub.id, paid: false }),
      {
        created: t0 + 1,
      },
    );
    const graceEnd = new Date((t0 + 1) * 1000 + GRACE_MS).toISOString();
    expect((await send(failed)).json).toEqual({
      status: 'applied',
      detail: `payment overdue; grace period ends ${graceEnd}`,
      delivered: true,
    });
    expect(await recorded(failed.id)).toEqual([expect.objectContaining({ type: 'payment.failed', user_id: userId })]);
    await api.waitForStatus(token, (s) => s.paymentState === 'overdue' && s.paymentGraceEndsAt === graceEnd);

    const paid = stripeEvent('invoice.paid', stripeInvoice({ customer, subscription: sub.id, paid: true }), {
      created: t0 + 2,
    });
    expect((await send(paid)).json).toMatchObject({
      status: 'applied',
      detail: 'payment recovered; grace period closed',
    });
    const s = await api.waitForStatus(token, (x) => x.paymentState === 'ok');
    expect(s).toMatchObject({ state: 'running', paymentGraceEndsAt: null });
  });

  test('events that cannot change anything are recorded with the reason and answered 200 (so Stripe stops retrying)', async () => {
    const userId = await api.createUser('free');
    // An unknown customer (no metadata, never linked).
    const stranger = stripeId('cus');
    const orphan = stripeEvent('invoice.payment_failed', stripeInvoice({ customer: stranger, paid: false }));
    expect(await send(orphan)).toMatchObject({
      status: 200,
      json: {
        status: 'ignored',
        detail: `customer ${stranger} is not linked to a user: neither this event nor an earlier one carried metadata.user_id`,
        delivered: false,
      },
    });
    expect(await recorded(orphan.id)).toEqual([
      expect.objectContaining({ type: 'invoice.payment_failed', user_id: null, outcome: 'ignored' }),
    ]);
    expect((await send(orphan)).json).toMatchObject({
      status: 'duplicate',
      detail: expect.stringMatching(/\(ignored: customer cus_\w+ is not linked/),
    });

    // A metadata.user_id that is not a UUID.
    const alice = stripeEvent('customer.subscription.created', subscribe('alice', stripeId('cus')));
    expect((await send(alice)).json).toMatchObject({
      status: 'ignored',
      detail: expect.stringMatching(/^metadata.user_id of subscription sub_\w+ \("alice"\) is not a UUID$/),
    });
    expect(await recorded(alice.id)).toEqual([expect.objectContaining({ outcome: 'ignored' })]);

    // A price STRIPE_PRICE_TIERS does not list: nothing changes for the user.
    const merch = stripeEvent('customer.subscription.created', subscribe(userId, stripeId('cus'), ['price_merch']));
    expect((await send(merch)).json).toMatchObject({
      status: 'ignored',
      detail: expect.stringMatching(/^price price_merch of subscription sub_\w+ has no tier in STRIPE_PRICE_TIERS$/),
    });
    expect(await recorded(merch.id)).toEqual([expect.objectContaining({ user_id: userId, outcome: 'ignored' })]);
    expect(await account(userId)).toBeUndefined();

    // A customer linked to one user whose next event names another: refused, the link stays.
    const customer = stripeId('cus');
    expect((await send(stripeEvent('customer.subscription.created', subscribe(userId, customer)))).json).toMatchObject({
      status: 'applied',
    });
    const other = await api.createUser('free');
    const hijack = stripeEvent('customer.subscription.updated', subscribe(other, customer), { created: at(5) });
    expect((await send(hijack)).json).toMatchObject({
      status: 'ignored',
      detail: `customer ${customer} is linked to user ${userId}, but the event names user ${other}; nothing changed`,
    });
    expect(await account(other)).toBeUndefined();

    // A type we do not use: answered, not recorded.
    const charge = stripeEvent('charge.succeeded', { id: stripeId('ch'), object: 'charge', amount: 2900 });
    expect((await send(charge)).json).toEqual({
      status: 'ignored',
      detail: 'Stripe event type charge.succeeded is not used by this server',
      delivered: false,
    });
    expect(await recorded(charge.id)).toEqual([]);
  });

  test('bad, missing, stale signatures are 400 problems and record nothing; either secret verifies', async () => {
    const userId = await api.createUser('free');
    const event = stripeEvent('customer.subscription.created', subscribe(userId, stripeId('cus')), { created: at() });
    const payload = JSON.stringify(event);
    const now = Math.floor(Date.now() / 1000);
    const good = Stripe.webhooks.generateTestHeaderString({ payload, secret: NEW_SECRET, timestamp: now });
    const attempts: [string, Parameters<typeof send>[1], RegExp][] = [
      ['no header', { header: null }, /^missing stripe-signature header$/],
      ['malformed header', { header: 'sha256=abc' }, /^malformed stripe-signature header/],
      ['no v1', { header: `t=${now},v0=abc` }, /carries no v1 signature/],
      ['a secret not configured', { secret: 'whsec_someoneelse0123456789' }, /matches none of the endpoint secrets/],
      ['stale timestamp', { timestamp: now - TOLERANCE - 5 }, /older than the 120-second tolerance/],
      ['tampered body', { raw: payload.replace('"active"', '"trialing"'), header: good }, /matches none/],
    ];
    for (const [name, o, detail] of attempts) {
      const res = await send(event, o);
      expectProblem(res, 400);
      expect([name, res.json.detail]).toEqual([name, expect.stringMatching(detail)]);
    }
    expect(await recorded(event.id)).toEqual([]);
    expect(await account(userId)).toBeUndefined();

    // Within the tolerance, signed with the old secret (Stripe still signs with both while it rolls).
    expect((await send(event, { secret: OLD_SECRET, timestamp: now - TOLERANCE + 30 })).json).toMatchObject({
      status: 'applied',
      detail: 'tier elite',
    });
    const next = stripeEvent('customer.subscription.updated', subscribe(userId, stripeId('cus'), [PRO]), {
      created: at(5),
    });
    expect((await send(next, { secret: NEW_SECRET })).json).toMatchObject({ status: 'applied', detail: 'tier pro' });

    const metrics = await api.call('GET', '/metrics');
    expect(metrics.text).toMatch(/api_webhooks_total\{type="stripe",result="bad_signature"\} \d+/);
    expect(metrics.text).toMatch(/api_webhooks_total\{type="customer.subscription.created",result="applied"\} \d+/);
  });

  test('a verified body that is not a Stripe event is a 400; without STRIPE_WEBHOOK_SECRET the route answers 503', async () => {
    expectProblem(await send({ hello: 'world' }), 400);
    const bare = await api.startApp({ STRIPE_WEBHOOK_SECRET: '' });
    const res = await send(stripeEvent('invoice.paid', stripeInvoice({ customer: stripeId('cus'), paid: true })), {
      base: bare.url,
    });
    expectProblem(res, 503);
    expect(res.json.detail).toMatch(/STRIPE_WEBHOOK_SECRET/);
  });

  test('the customer links are the service role’s alone: RLS on, nothing granted to anon or authenticated', async () => {
    const userId = await api.createUser('free');
    const tryAs = async (role: 'anon' | 'authenticated', sql: string) => {
      const client = await api.stack.db.pool.connect();
      try {
        await client.query('begin');
        await client.query(`select set_config('request.jwt.claims', $1, true), set_config('role', $2, true)`, [
          JSON.stringify({ sub: userId, role }),
          role,
        ]);
        return await client.query(sql);
      } finally {
        await client.query('rollback');
        client.release();
      }
    };
    for (const role of ['anon', 'authenticated'] as const)
      for (const sql of [
        'select * from public.stripe_customers',
        `insert into public.stripe_customers (customer_id, user_id) values ('cus_mine', '${userId}')`,
        `select public.stripe_link_customer('cus_mine', '${userId}', 'x')`,
        `select public.stripe_customer_user('cus_mine')`,
        `select public.record_ignored_billing_event('x', 'y', null, now(), '{}', 'z')`,
      ])
        await expect(tryAs(role, sql)).rejects.toThrow(/permission denied/);
    const { rows } = await api.stack.db.pool.query(
      `select relrowsecurity from pg_class where oid = 'public.stripe_customers'::regclass`,
    );
    expect(rows).toEqual([{ relrowsecurity: true }]);
  });

  test('an event for a user that does not exist is recorded as ignored', async () => {
    const ghost = randomUUID();
    const e = stripeEvent('customer.subscription.created', subscribe(ghost, stripeId('cus')));
    expect((await send(e)).json).toMatchObject({ status: 'ignored', detail: 'no such user' });
    expect(await recorded(e.id)).toEqual([expect.objectContaining({ user_id: ghost, outcome: 'ignored' })]);
  });
});
