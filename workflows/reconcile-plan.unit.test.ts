import { planReconcile, statusFromListing } from './reconcile-plan';

describe('planReconcile (pure)', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const old = '2026-01-01T11:00:00Z';
  const young = '2026-01-01T11:59:50Z';
  const machine = (id: string, userId: string, createdAt = old) => ({
    id,
    name: id,
    state: 'started',
    userId,
    workflowIdTag: null,
    createdAt,
  });
  const wf = (userId: string, status: { state: string; machineId: string | null; since: string } | null) => ({
    workflowId: `machine-${userId}`,
    userId,
    status,
    searchAttributes: { state: null, machineId: null },
  });

  test('a mid-step or unanswered workflow owns its user machines; nothing young is touched', () => {
    const plan = planReconcile(
      {
        rows: [{ userId: 'u3', status: 'running', machineId: 'm3', workflowId: null, updatedAt: young }],
        machines: [machine('m1', 'u1'), machine('m1b', 'u1'), machine('m2', 'u2'), machine('m3', 'u3', young)],
        workflows: [wf('u1', { state: 'provisioning', machineId: null, since: old }), wf('u2', null)],
      },
      now,
      60,
    );
    expect(plan).toEqual({ destroy: [], repair: [], signal: [], nudge: [] });
  });

  test('orphans, duplicates, stale rows and vanished machines', () => {
    const plan = planReconcile(
      {
        rows: [
          { userId: 'u1', status: 'stopped', machineId: null, workflowId: null, updatedAt: old },
          { userId: 'u4', status: 'starting', machineId: null, workflowId: null, updatedAt: old },
        ],
        machines: [machine('a', 'u1'), machine('b', 'u2'), machine('c', 'u2')],
        workflows: [
          wf('u2', { state: 'running', machineId: 'c', since: old }),
          wf('u3', { state: 'running', machineId: 'zz', since: old }),
        ],
      },
      now,
      60,
    );
    expect(plan.destroy).toEqual([
      { machineId: 'a', userId: 'u1', kind: 'orphan' },
      { machineId: 'b', userId: 'u2', kind: 'duplicate', keep: 'c' },
    ]);
    expect(plan.repair).toEqual([{ userId: 'u4', from: 'starting', seenUpdatedAt: old, kind: 'ended' }]);
    expect(plan.signal).toEqual([{ workflowId: 'machine-u3', userId: 'u3', machineId: 'zz' }]);
    expect(plan.nudge).toEqual([]);
  });

  test('a running workflow whose stored billing no longer entitles its user is nudged; others are not', () => {
    const paid = { profileTier: 'elite', profileTierChangedAt: old, account: null };
    const overdue = (graceEndsAt: string) => ({
      ...paid,
      account: {
        tier: null,
        tierChangedAt: null,
        paymentState: 'overdue' as const,
        overdueSince: old,
        graceEndsAt,
        lastPaymentEventAt: old,
      },
    });
    const row = (userId: string, billing: ReturnType<typeof overdue> | typeof paid) => ({
      userId,
      status: 'running' as const,
      machineId: `m-${userId}`,
      workflowId: `machine-${userId}`,
      updatedAt: old,
      billing,
    });
    const plan = planReconcile(
      {
        rows: [
          row('paid', paid),
          row('in-grace', overdue('2026-01-02T00:00:00Z')),
          row('grace-over', overdue('2026-01-01T11:30:00Z')),
          row('downgraded', { ...paid, profileTier: 'free' }),
          row('starting', { ...paid, profileTier: 'free' }),
        ],
        machines: ['paid', 'in-grace', 'grace-over', 'downgraded', 'starting'].map((u) => machine(`m-${u}`, u)),
        workflows: ['paid', 'in-grace', 'grace-over', 'downgraded']
          .map((u) => wf(u, { state: 'running', machineId: `m-${u}`, since: old }))
          .concat(wf('starting', { state: 'starting', machineId: 'm-starting', since: old })),
      },
      now,
      60,
    );
    expect(plan.nudge).toEqual([
      {
        workflowId: 'machine-grace-over',
        userId: 'grace-over',
        detail: 'payment overdue since 2026-01-01T11:00:00.000Z, grace ended 2026-01-01T11:30:00.000Z',
      },
      {
        workflowId: 'machine-downgraded',
        userId: 'downgraded',
        detail: 'a cloud machine needs the elite tier; your tier is free',
      },
    ]);
  });

  test('a status from visibility and the row, no query: they must agree on a running machine (the row says since when)', () => {
    const started = '2026-01-01T10:00:00Z';
    const listed = (state: string | null, machineId: string | null = 'm1') => ({ state, machineId, startTime: old });
    const row = (status: string, machineId: string | null = 'm1') => ({
      status,
      machineId,
      startedAt: started,
      updatedAt: young,
    });
    expect(statusFromListing(listed('running'), row('running'))).toEqual({
      state: 'running',
      machineId: 'm1',
      since: started,
    });
    // Mid-step: the plan leaves it alone whatever its since, so the row need not agree.
    expect(statusFromListing(listed('starting'), row('running', 'm0'))).toEqual({
      state: 'starting',
      machineId: 'm1',
      since: old,
    });
    // Disagreement (a row to repair, visibility a moment behind) or no state yet: ask the workflow.
    expect(statusFromListing(listed('running'), row('error'))).toBeUndefined();
    expect(statusFromListing(listed('running'), row('running', 'm2'))).toBeUndefined();
    expect(statusFromListing(listed('running'), undefined)).toBeUndefined();
    expect(statusFromListing(listed(null), row('running'))).toBeUndefined();
  });
});
