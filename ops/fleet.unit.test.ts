import type { Machine } from '../fly/machines';
import {
  filterMachines,
  joinMachines,
  runningMachineWorkflowsQuery,
  toFleetRow,
  type RowListing,
  type WorkflowListing,
} from './fleet';
import { toFleetMachines } from '../fly/fleet';

const t = (iso: string) => new Date(iso);
const row = (userId: string, over: Partial<RowListing> = {}): RowListing => ({
  userId,
  status: 'running',
  region: 'ams',
  machineId: `m-${userId}`,
  lastHealthyAt: t('2026-06-01T10:05:00Z'),
  startedAt: t('2026-06-01T09:00:00Z'),
  stoppedAt: null,
  updatedAt: t('2026-06-01T10:05:00Z'),
  ...over,
});
const wf = (userId: string, over: Partial<WorkflowListing> = {}): WorkflowListing => ({
  workflowId: `machine-${userId}`,
  userId,
  state: 'running',
  tier: 'elite',
  region: 'ams',
  machineId: `m-${userId}`,
  startTime: '2026-06-01T08:59:00.000Z',
  ...over,
});

describe('joinMachines: running workflows joined with the rows', () => {
  test('both agree: one line, the workflow as the source, since = started_at, no note', () => {
    expect(joinMachines([row('a')], [wf('a')])).toEqual([
      {
        userId: 'a',
        state: 'running',
        source: 'workflow',
        tier: 'elite',
        region: 'ams',
        flyMachineId: 'm-a',
        since: '2026-06-01T09:00:00.000Z',
        lastHealthyAt: '2026-06-01T10:05:00.000Z',
        workflowId: 'machine-a',
        note: null,
      },
    ]);
  });

  test('the workflow wins where they disagree, and the note says how', () => {
    const [stale, otherMachine] = joinMachines(
      [row('a', { status: 'starting' }), row('b', { machineId: 'old' })],
      [wf('a'), wf('b')],
    );
    expect(stale).toMatchObject({ state: 'running', note: 'row says starting' });
    expect(otherMachine).toMatchObject({ flyMachineId: 'm-b', note: 'row names machine old' });
  });

  test('a workflow without a row yet: since = the run start', () => {
    expect(joinMachines([], [wf('a', { state: 'provisioning', machineId: null })])).toEqual([
      expect.objectContaining({ state: 'provisioning', since: '2026-06-01T08:59:00.000Z', note: 'no row yet' }),
    ]);
  });

  test('rows without a workflow: their own state; an active one is flagged, an error shows its message', () => {
    const list = joinMachines(
      [
        row('c', { status: 'stopped', stoppedAt: t('2026-06-01T11:00:00Z') }),
        row('b', { status: 'error', errorMessage: 'unhealthy after 2 restarts' }),
        row('a', { status: 'running' }),
      ],
      [],
      new Map([['b', 'elite']]),
    );
    expect(list.map((m) => [m.userId, m.state, m.source, m.tier, m.since, m.note])).toEqual([
      ['a', 'running', 'row', null, '2026-06-01T09:00:00.000Z', 'row says running but no workflow runs'],
      ['b', 'error', 'row', 'elite', '2026-06-01T10:05:00.000Z', 'unhealthy after 2 restarts'],
      ['c', 'stopped', 'row', null, '2026-06-01T11:00:00.000Z', null],
    ]);
  });

  test('the billing tier fills in only where the workflow published none', () => {
    const tiers = new Map([
      ['a', 'pro'],
      ['b', 'pro'],
    ]);
    const [a, b] = joinMachines([], [wf('a'), wf('b', { tier: null })], tiers);
    expect([a?.tier, b?.tier]).toEqual(['elite', 'pro']);
  });
});

describe('filterMachines', () => {
  const list = joinMachines(
    [row('a'), row('b', { status: 'stopped', region: 'fra' })],
    [wf('a')],
    new Map([['b', 'free']]),
  );
  test.each([
    [{}, ['a', 'b']],
    [{ state: 'running' }, ['a']],
    [{ state: 'stopped', region: 'fra' }, ['b']],
    [{ tier: 'elite' }, ['a']],
    [{ tier: 'elite', region: 'fra' }, []],
  ])('%j', (filter, users) => expect(filterMachines(list, filter).map((m) => m.userId)).toEqual(users));
});

describe("reconcile's listings", () => {
  test('the visibility query: running machine workflows of one task queue, quotes escaped', () => {
    expect(runningMachineWorkflowsQuery('machines')).toBe(
      "WorkflowType = 'machineLifecycle' AND ExecutionStatus = 'Running' AND TaskQueue = 'machines'",
    );
    expect(runningMachineWorkflowsQuery("q'x")).toContain("TaskQueue = 'q\\'x'");
  });

  test('toFleetMachines keeps live machines with a user_id tag', () => {
    const machines: Machine[] = [
      {
        id: 'm1',
        name: 'ce-a',
        state: 'started',
        created_at: '2026-06-01T09:00:00Z',
        config: { metadata: { user_id: 'a', workflow_id: 'machine-a' } },
      },
      { id: 'm2', state: 'destroyed', config: { metadata: { user_id: 'a' } } },
      { id: 'm3', state: 'started', config: { metadata: {} } },
      { id: 'm4', state: 'stopped', config: { metadata: { user_id: 'b' } } },
    ];
    expect(toFleetMachines(machines)).toEqual([
      {
        id: 'm1',
        name: 'ce-a',
        state: 'started',
        userId: 'a',
        workflowIdTag: 'machine-a',
        createdAt: '2026-06-01T09:00:00Z',
      },
      { id: 'm4', name: '', state: 'stopped', userId: 'b', workflowIdTag: null, createdAt: null },
    ]);
  });

  test('toFleetRow: instants as ISO, billing carried', () => {
    const billing = { profileTier: 'elite', profileTierChangedAt: null, account: null };
    expect(
      toFleetRow(
        {
          userId: 'a',
          status: 'running',
          machineId: 'm1',
          workflowId: 'machine-a',
          updatedAt: t('2026-06-01T10:00:00Z'),
        },
        billing,
      ),
    ).toEqual({
      userId: 'a',
      status: 'running',
      machineId: 'm1',
      workflowId: 'machine-a',
      updatedAt: '2026-06-01T10:00:00.000Z',
      billing,
    });
  });
});
