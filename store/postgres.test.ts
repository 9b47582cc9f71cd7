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
    const first = await mine.insertSignal(signal);
    const again = await mine.insertSignal({ ...signal, payload: { close: 2 } });
    expect(first.inserted).toBe(true);
    expect(first.signal).toMatchObject({ userId: user, symbol: 'BTCUSDT', payload: { close: 1 } });
    expect(again).toEqual({ inserted: false, signal: null });
    expect(await mine.listSignals()).toHaveLength(1);
    expect(await db.store.asUser(other).listSignals()).toEqual([]);
    // The other user's trader id cannot be used.
    await expect(mine.insertSignal({ ...signal, traderId: rows[2].id as string })).rejects.toThrow(
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
