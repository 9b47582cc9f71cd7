import type { MachineEvent, MachineRow } from '../store/types';
import type { MachineState } from '../workflows/contract';
import { recordedStatus } from './machine-status';

/** The status from records (no query), as inputs → outputs: rows and events the workflow writes. */

const T = Date.parse('2026-12-01T12:00:00.000Z');
const at = (s: number) => new Date(T + s * 1000);
const row = (r: Partial<MachineRow> = {}): MachineRow => ({
  id: 'r1',
  userId: 'u1',
  machineId: 'm1',
  flyMachineName: 'ce-u1',
  workflowId: 'machine-u1',
  region: 'ams',
  cpuPriority: 'normal',
  status: 'running',
  errorMessage: null,
  lastHealthyAt: at(30),
  startedAt: at(3),
  stoppedAt: null,
  createdAt: at(0),
  updatedAt: at(30),
  ...r,
});
let id = 0;
const event = (s: number, from: MachineState | null, to: MachineState, reason?: string): MachineEvent => ({
  id: ++id,
  userId: 'u1',
  workflowId: 'machine-u1',
  flyMachineId: 'm1',
  fromStatus: from,
  toStatus: to,
  reason: reason ?? null,
  details: {},
  occurredAt: at(s),
});
const firstLife = [
  event(0, null, 'provisioning', 'requested'),
  event(1, 'provisioning', 'starting', 'fly machine m1 created'),
  event(3, 'starting', 'running', 'healthy'),
];
const live = (state: MachineState, startS = 0) => ({ state, region: 'ams', startTime: at(startS) });

describe('recordedStatus', () => {
  test('a running workflow: its records, its life only, since when it entered the state (a notice keeps it)', () => {
    const earlier = [event(-100, null, 'provisioning'), event(-90, 'running', 'stopped', 'user_requested')];
    const events = [...earlier, ...firstLife, event(20, 'running', 'running', 'payment_recovered')].reverse();
    const s = recordedStatus({ row: row(), events, live: live('running') })!;
    expect(s).toMatchObject({
      state: 'running',
      machineId: 'm1',
      since: at(3).toISOString(),
      reason: 'payment_recovered',
      lastRenewedAt: at(30).toISOString(),
      source: 'workflow',
    });
    expect(s.recent.map((e) => e.state)).toEqual(['provisioning', 'starting', 'running', 'running']);
  });

  test('a start the worker has not recorded yet: provisioning from the description, not the old row', () => {
    const stopped = row({ status: 'stopped', updatedAt: at(-10) });
    for (const r of [null, stopped, row({ status: 'running', updatedAt: at(-10) })])
      expect(recordedStatus({ row: r, events: [], live: live('provisioning', 0) })).toMatchObject({
        state: 'provisioning',
        machineId: null,
        since: at(0).toISOString(),
        recent: [],
        source: 'workflow',
      });
  });

  test('mid-start: the step and its reason come from the records (what the page says)', () => {
    const events = firstLife.slice(0, 2);
    const s = recordedStatus({
      row: row({ status: 'starting', updatedAt: at(1) }),
      events,
      live: live('provisioning'),
    });
    expect(s).toMatchObject({ state: 'starting', reason: 'fly machine m1 created', since: at(1).toISOString() });
  });

  test('no workflow: the last recorded state, every recent event; nothing at all: null', () => {
    const events = [...firstLife, event(40, 'running', 'stopping', 'user_requested')];
    events.push(event(41, 'stopping', 'stopped', 'user_requested'));
    const stopped = row({ status: 'stopped', stoppedAt: at(41) });
    expect(recordedStatus({ row: stopped, events })).toMatchObject({
      state: 'stopped',
      reason: 'user_requested',
      since: at(41).toISOString(),
      lastRenewedAt: null,
      source: 'table',
    });
    expect(recordedStatus({ row: null, events: [] })).toBeNull();
  });
});
