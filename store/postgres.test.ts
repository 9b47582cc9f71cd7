import { createTestDatabase, type TestDatabase } from '../test/pg';

describe('the Postgres store', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  test('reads a user tier, and null for an unknown user', async () => {
    const elite = await db.createUser('elite');
    const free = await db.createUser('free');
    expect(await db.store.getSubscriptionTier(elite)).toBe('elite');
    expect(await db.store.getSubscriptionTier(free)).toBe('free');
    expect(await db.store.getSubscriptionTier('00000000-0000-4000-8000-000000000000')).toBeNull();
  });

  test('the status constraint rejects an unknown state', async () => {
    const user = await db.createUser();
    await expect(
      db.pool.query(`insert into cloud_machines (user_id, status) values ($1, 'exploded')`, [user]),
    ).rejects.toThrow(/cloud_machines_status_check/);
    await expect(db.store.recordMachineTransition({ userId: user, status: 'exploded' as never })).rejects.toThrow(
      /cloud_machines_status_check/,
    );
    expect(await db.store.getMachine(user)).toBeNull();
  });

  test('a transition upserts the machine row and appends one audit event with from/to and reason, atomically', async () => {
    const user = await db.createUser();
    await db.store.recordMachineTransition({
      userId: user,
      status: 'provisioning',
      reason: 'requested',
      workflowId: `machine-${user}`,
      region: 'ams',
    });
    const running = await db.store.recordMachineTransition({
      userId: user,
      status: 'running',
      reason: 'healthy',
      machineId: 'm123',
      machineName: `ce-${user}`,
      lastHealthyAt: new Date('2026-01-01T00:00:00Z'),
    });
    expect(running).toMatchObject({
      status: 'running',
      machineId: 'm123',
      flyMachineName: `ce-${user}`,
      workflowId: `machine-${user}`,
      region: 'ams',
      lastHealthyAt: new Date('2026-01-01T00:00:00Z'),
    });
    expect(running.startedAt).toBeInstanceOf(Date);
    const events = await db.store.listMachineEvents(user);
    expect(events.map((e) => [e.fromStatus, e.toStatus, e.reason])).toEqual([
      ['provisioning', 'running', 'healthy'],
      [null, 'provisioning', 'requested'],
    ]);
    expect(events[0]?.flyMachineId).toBe('m123');

    // A health refresh without a reason is not a transition: no audit row.
    await db.store.recordMachineTransition({ userId: user, status: 'running', lastHealthyAt: new Date() });
    expect(await db.store.listMachineEvents(user)).toHaveLength(2);
  });

  test('writing the same transition twice (a retried activity) records it once', async () => {
    const user = await db.createUser();
    const t = { userId: user, status: 'provisioning' as const, reason: 'requested', transitionId: `${user}-1` };
    await db.store.recordMachineTransition(t);
    await db.store.recordMachineTransition(t);
    expect(await db.store.listMachineEvents(user)).toHaveLength(1);
  });

  test('a failed transition leaves neither the row nor an event behind', async () => {
    const user = await db.createUser();
    await expect(
      db.store.recordMachineTransition({ userId: user, status: 'running', cpuPriority: 'turbo' as never }),
    ).rejects.toThrow();
    expect(await db.store.getMachine(user)).toBeNull();
    expect(await db.store.listMachineEvents(user)).toEqual([]);
  });

  test('a second insert of the same webhook event id is a no-op', async () => {
    const user = await db.createUser();
    const event = { id: 'evt_123', type: 'payment.failed', userId: user, payload: { id: 'evt_123' } };
    expect(await db.store.recordWebhookEvent(event)).toBe(true);
    expect(await db.store.recordWebhookEvent({ ...event, payload: { changed: true } })).toBe(false);
    const { rows } = await db.pool.query('select payload from webhook_events where id = $1', ['evt_123']);
    expect(rows).toEqual([{ payload: { id: 'evt_123' } }]);
  });

  describe('billing events: recorded and applied in one transaction, newer instant wins', () => {
    const DAY = 86_400_000;
    const apply = (userId: string, type: 'tier.changed' | 'payment.failed' | 'payment.recovered', at: string, o = {}) =>
      db.store.applyBillingEvent({
        id: `evt_${Math.random().toString(36).slice(2)}`,
        type,
        userId,
        occurredAt: at,
        payload: {},
        gracePeriodMs: 3 * DAY,
        ...o,
      });

    test('a failure opens the grace period once; a later one does not extend it; recovery closes it', async () => {
      const user = await db.createUser();
      expect(await apply(user, 'payment.failed', '2026-12-01T10:00:00Z')).toEqual({
        outcome: 'applied',
        detail: 'payment overdue; grace period ends 2026-12-04T10:00:00.000Z',
      });
      expect(await apply(user, 'payment.failed', '2026-12-02T10:00:00Z')).toEqual({
        outcome: 'applied',
        detail: 'payment still overdue; grace period unchanged, ends 2026-12-04T10:00:00.000Z',
      });
      expect((await db.store.getBillingFacts(user)).account).toMatchObject({
        paymentState: 'overdue',
        overdueSince: '2026-12-01T10:00:00.000Z',
        graceEndsAt: '2026-12-04T10:00:00.000Z',
        lastPaymentEventAt: '2026-12-02T10:00:00.000Z',
      });
      expect(await apply(user, 'payment.recovered', '2026-12-03T10:00:00Z')).toMatchObject({ outcome: 'applied' });
      expect((await db.store.getBillingFacts(user)).account).toMatchObject({ paymentState: 'ok', graceEndsAt: null });
    });

    test('older events and duplicate ids change nothing and say so; instants compare across offsets', async () => {
      const user = await db.createUser();
      await apply(user, 'payment.recovered', '2026-12-01T09:30:00Z');
      // 10:00+02:00 is 08:00Z: older, though it sorts after 09:30Z as a string.
      expect(await apply(user, 'payment.failed', '2026-12-01T10:00:00+02:00')).toEqual({
        outcome: 'ignored',
        detail: 'older than the payment event already applied (at 2026-12-01T09:30:00.000Z)',
      });
      const first = await apply(user, 'tier.changed', '2026-12-01T09:30:00.250Z', { tier: 'pro', id: 'evt_tier_1' });
      expect(first).toEqual({ outcome: 'applied', detail: 'tier pro' });
      expect(await apply(user, 'tier.changed', '2026-12-01T12:00:00Z', { tier: 'free', id: 'evt_tier_1' })).toEqual({
        outcome: 'duplicate',
        detail: expect.stringMatching(/^event evt_tier_1 was received at .* \(applied: tier pro\); nothing changed$/),
      });
      // Without milliseconds: 09:30:00Z is before 09:30:00.250Z.
      expect(await apply(user, 'tier.changed', '2026-12-01T09:30:00Z', { tier: 'elite' })).toMatchObject({
        outcome: 'ignored',
      });
      expect((await db.store.getBillingFacts(user)).account).toMatchObject({
        tier: 'pro',
        tierChangedAt: '2026-12-01T09:30:00.250Z',
        paymentState: 'ok',
      });
      const { rows } = await db.pool.query(
        'select outcome, count(*)::int as n from webhook_events where user_id = $1 group by outcome order by outcome',
        [user],
      );
      expect(rows).toEqual([
        { outcome: 'applied', n: 2 },
        { outcome: 'ignored', n: 2 },
      ]);
    });

    test('an unknown user is recorded and ignored; 20 concurrent deliveries of one id apply once', async () => {
      expect(await apply('00000000-0000-4000-8000-000000000001', 'payment.failed', '2026-12-01T00:00:00Z')).toEqual({
        outcome: 'ignored',
        detail: 'no such user',
      });
      const user = await db.createUser();
      const results = await Promise.all(
        Array.from({ length: 20 }, () => apply(user, 'payment.failed', '2026-12-01T00:00:00Z', { id: 'evt_once' })),
      );
      expect(results.map((r) => r.outcome).sort()).toEqual(['applied', ...Array(19).fill('duplicate')]);
    });

    test('the app changing the tier stamps when; billing facts for many users in one query', async () => {
      const user = await db.createUser('free');
      const before = (await db.store.getBillingFacts(user)).profileTierChangedAt!;
      await db.pool.query(`update profiles set subscription_tier = 'elite' where id = $1`, [user]);
      const after = await db.store.getBillingFacts(user);
      expect(after.profileTier).toBe('elite');
      expect(Date.parse(after.profileTierChangedAt!)).toBeGreaterThanOrEqual(Date.parse(before));
      const none = '00000000-0000-4000-8000-000000000002';
      const many = await db.store.listBillingFacts([user, none]);
      expect(many.get(user)).toEqual(after);
      expect(many.get(none)).toEqual({ profileTier: null, profileTierChangedAt: null, account: null });
    });
  });

  test('acting as a user: lists only their traders and inserts a signal exactly once', async () => {
    const user = await db.createUser();
    const other = await db.createUser();
    const { rows } = await db.pool.query(
      `insert into traders (user_id, name, definition, enabled) values ($1, 'a', '{"k":1}', true), ($1, 'b', '{}', false), ($2, 'c', '{}', true) returning id, user_id`,
      [user, other],
    );
    const mine = db.store.asUser(user);
    expect((await mine.listTraders()).map((t) => t.name).sort()).toEqual(['a', 'b']);
    expect((await mine.listTraders({ enabledOnly: true })).map((t) => t.name)).toEqual(['a']);
    const signal = {
      traderId: rows[0].id as string,
      symbol: 'BTCUSDT',
      interval: '1m',
      candleOpenAt: new Date('2025-01-01T00:00:00Z'),
      payload: { close: 1 },
    };
    const first = await mine.insertTradeSignal(signal);
    const again = await mine.insertTradeSignal({ ...signal, payload: { close: 2 } });
    expect(first.inserted).toBe(true);
    expect(first.signal).toMatchObject({ userId: user, symbol: 'BTCUSDT', payload: { close: 1 } });
    expect(again).toEqual({ inserted: false, signal: null });
    expect(await mine.listTradeSignals()).toHaveLength(1);
    expect(await db.store.asUser(other).listTradeSignals()).toEqual([]);
    // The other user's trader id cannot be used.
    await expect(mine.insertTradeSignal({ ...signal, traderId: rows[2].id as string })).rejects.toThrow(
      /row-level security/,
    );
  });

  test('lists machines by status', async () => {
    const user = await db.createUser();
    await db.store.recordMachineTransition({ userId: user, status: 'error', reason: 'boom', errorMessage: 'boom' });
    const errors = await db.store.listMachines({ statuses: ['error'] });
    expect(errors.map((m) => m.userId)).toContain(user);
    expect(errors.find((m) => m.userId === user)?.errorMessage).toBe('boom');
  });
});
