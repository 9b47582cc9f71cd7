import { entitlement, type BillingFacts } from '../common/entitlement';
import type { MachineEvent, MachineRow } from '../store/types';
import { joinMachines } from './fleet';
import { lastLines, flyLogsCommand } from './logs';
import { renderMachines, renderPlan, renderReport, renderShow, type ShowView } from './render';

const NOW = Date.parse('2026-06-01T10:12:00Z');
const t = (iso: string) => new Date(iso);

test('renderMachines: a table and a count', () => {
  const list = joinMachines(
    [
      {
        userId: 'u1',
        status: 'running',
        region: 'ams',
        machineId: 'm1',
        lastHealthyAt: t('2026-06-01T10:11:00Z'),
        startedAt: t('2026-06-01T10:00:00Z'),
        stoppedAt: null,
        updatedAt: t('2026-06-01T10:11:00Z'),
      },
    ],
    [
      {
        workflowId: 'machine-u1',
        userId: 'u1',
        state: 'running',
        tier: 'elite',
        region: 'ams',
        machineId: 'm1',
        startTime: null,
      },
    ],
  );
  expect(renderMachines(list, NOW)).toBe(
    [
      'USER  STATE    TIER   REGION  FLY MACHINE  SINCE                           LAST HEALTHY                   NOTE',
      'u1    running  elite  ams     m1           2026-06-01 10:00:00Z (12m ago)  2026-06-01 10:11:00Z (1m ago)  -',
      '1 machine',
      '',
    ].join('\n'),
  );
  expect(renderMachines([], NOW)).toBe(
    'USER  STATE  TIER  REGION  FLY MACHINE  SINCE  LAST HEALTHY  NOTE\n0 machines\n',
  );
});

test('renderPlan: what reconcile would do, repairs first, or "nothing to do"', () => {
  const text = renderPlan(
    {
      repair: [{ userId: 'u2', from: 'running', seenUpdatedAt: 'x', kind: 'ended' }],
      destroy: [
        { machineId: 'm9', userId: 'u3', kind: 'orphan' },
        { machineId: 'm8', userId: 'u1', kind: 'duplicate', keep: 'm1' },
      ],
      signal: [{ workflowId: 'machine-u4', userId: 'u4', machineId: 'm4' }],
      nudge: [{ workflowId: 'machine-u5', userId: 'u5', detail: 'payment overdue' }],
    },
    { machines: 3, workflows: 2, rows: 4 },
    600,
  );
  expect(text.split('\n')).toEqual([
    'dry run (nothing done): seen 3 Fly machines, 2 workflows, 4 rows; ignoring anything younger than 10m',
    'ACTION   TARGET      USER  WHY',
    'repair   row         u2    row says running but no workflow runs: stopped or error',
    'destroy  m9          u3    orphan: no running workflow',
    'destroy  m8          u1    duplicate: the workflow owns m1',
    'signal   machine-u4  u4    machine m4 vanished',
    'nudge    machine-u5  u5    payment overdue',
    '',
  ]);
  expect(
    renderPlan({ repair: [], destroy: [], signal: [], nudge: [] }, { machines: 0, workflows: 0, rows: 0 }, 0),
  ).toMatch(/younger than 0s\nnothing to do\n$/);
});

test('renderReport: what reconcile did, skipped actions included', () => {
  const text = renderReport(
    {
      machinesSeen: 2,
      workflowsSeen: 1,
      rowsSeen: 1,
      destroyed: [{ machineId: 'm9', userId: 'u3', kind: 'orphan', outcome: 'destroyed' }],
      repaired: [{ userId: 'u2', from: 'running', to: 'error' }],
      signalled: [],
      nudged: [],
      skipped: [{ action: 'destroy', target: 'm7', outcome: 'skipped: a workflow runs now' }],
    },
    'reconcile-fleet-ops-1',
  );
  expect(text.split('\n')).toEqual([
    'reconcile-fleet-ops-1: seen 2 Fly machines, 1 workflow, 1 row',
    'ACTION     TARGET  USER  WHY',
    'repaired   row     u2    running → error',
    'destroyed  m9      u3    orphan: destroyed',
    'skipped    m7      -     destroy: skipped: a workflow runs now',
    '',
  ]);
});

test('renderShow: from the row when no workflow runs, billing, no Fly machine, the timeline', () => {
  const facts: BillingFacts = { profileTier: 'elite', profileTierChangedAt: null, account: null };
  const row = {
    userId: 'u1',
    status: 'stopped',
    machineId: 'm1',
    region: 'ams',
    lastHealthyAt: null,
    updatedAt: t('2026-06-01T10:00:00Z'),
    errorMessage: null,
  } as MachineRow;
  const event: MachineEvent = {
    id: 1,
    userId: 'u1',
    workflowId: 'machine-u1',
    flyMachineId: 'm1',
    fromStatus: 'stopping',
    toStatus: 'stopped',
    reason: 'operator',
    details: {},
    occurredAt: t('2026-06-01T10:00:00Z'),
  };
  const view: ShowView = {
    userId: 'u1',
    workflow: null,
    source: 'row',
    status: null,
    statusError: null,
    row,
    events: [event],
    flyMachines: [],
    flyError: null,
    billing: { facts, entitlement: entitlement(facts, NOW) },
  };
  const text = renderShow(view, NOW);
  expect(text).toContain(
    'state         stopped since 2026-06-01 10:00:00Z (12m ago) · the cloud_machines row (no workflow runs)',
  );
  expect(text).toContain('workflow      -');
  expect(text).toContain('Billing\n  tier      elite (from profile)\n  payment   ok\n  entitled  yes:');
  expect(text).toContain('Fly machines\n  (none)');
  expect(text).toContain('  2026-06-01 10:00:00Z  stopping  stopped  m1           operator');
});

describe('logs, pure parts', () => {
  test.each([
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc', 5, 'a\nb\nc\n'],
    ['', 3, ''],
    ['\n', 3, '\n'],
  ])('lastLines(%j, %d)', (text, n, expected) => expect(lastLines(text, n)).toBe(expected));

  test('the fly logs command: tails unless told not to', () => {
    expect(flyLogsCommand('app', 'm1', true)).toBe('fly logs -a app --machine m1');
    expect(flyLogsCommand('app', 'm1', false)).toBe('fly logs -a app --machine m1 --no-tail');
  });
});
