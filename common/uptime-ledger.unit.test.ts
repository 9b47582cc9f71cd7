import type { MachineState } from './machine-states';
import type { ReasonCode } from './reason-codes';
import { buildUptimeLedger, roundMinutes, type UptimeRecord } from './uptime-ledger';
import { creditPercent, monthlyUptime, totalsOf } from './uptime-slo';

const at = (day: number, hhmm: string) => `2026-03-${String(day).padStart(2, '0')}T${hhmm}:00.000Z`;
const t = (when: string, to: MachineState, code: ReasonCode, downSince?: string): UptimeRecord => ({
  at: when,
  kind: 'transition',
  to,
  code,
  downSince,
});
const bill = (
  when: string,
  type: 'tier.changed' | 'payment.failed' | 'payment.recovered',
  more = {},
): UptimeRecord => ({
  at: when,
  kind: 'billing',
  type,
  ...more,
});
/** A start at `when`: provisioning, starting a minute later, running a minute after that. */
const start = (day: number, hh: string) => [
  t(at(day, `${hh}:00`), 'provisioning', 'start_requested'),
  t(at(day, `${hh}:01`), 'starting', 'machine_created'),
  t(at(day, `${hh}:02`), 'running', 'healthy'),
];
const END = Date.parse('2026-04-01T00:00:00Z');
const ledger = (records: UptimeRecord[], from = '2026-03-01', to = '2026-03-31', now = END) =>
  buildUptimeLedger(records, { from, to, now });
const day = (days: ReturnType<typeof ledger>, d: number) => days.find((x) => x.day === at(d, '00:00').slice(0, 10))!;

describe('buildUptimeLedger', () => {
  test('nothing before the first start; the start-up minutes are ours; every full day adds up to 1440', () => {
    const days = ledger(start(2, '10'));
    expect(day(days, 1)).toEqual({
      day: '2026-03-01',
      entitledMinutes: 0,
      healthyMinutes: 0,
      down: { ours: 0, fly: 0, user: 0, billing: 0 },
    });
    expect(day(days, 2)).toMatchObject({ entitledMinutes: 14 * 60, healthyMinutes: 14 * 60 - 2, down: { ours: 2 } });
    expect(day(days, 3)).toMatchObject({ entitledMinutes: 1440, healthyMinutes: 1440 });
    expect(days).toHaveLength(31);
  });

  test('a self-heal counts from the last healthy check; Fly gets a vanished machine', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(3, '12:00'), 'starting', 'unhealthy:feed_idle', at(3, '11:45')),
      t(at(3, '12:02'), 'running', 'recovered'),
      t(at(5, '08:00'), 'starting', 'machine_gone', at(5, '07:45')),
      t(at(5, '08:03'), 'running', 'recovered'),
    ]);
    expect(day(days, 3)).toMatchObject({ healthyMinutes: 1440 - 17, down: { ours: 17, fly: 0 } });
    expect(day(days, 5)).toMatchObject({ healthyMinutes: 1440 - 18, down: { ours: 0, fly: 18 } });
  });

  test('downSince never reaches back before the previous record, nor turns a down stretch into another cause', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(2, '10:00'), 'running', 'payment_failed'),
      t(at(2, '10:05'), 'starting', 'unhealthy:no_answer', at(2, '09:00')),
      t(at(2, '10:06'), 'running', 'recovered'),
    ]);
    expect(day(days, 2).down.ours).toBe(6);
  });

  test('a user stop is the user’s until the next start, across days; a reconcile notice on it changes nothing', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(10, '12:00'), 'stopping', 'user_requested'),
      t(at(10, '12:00'), 'stopped', 'user_requested'),
      t(at(11, '03:00'), 'stopped', 'reconcile_orphan'),
      ...start(12, '12'),
    ]);
    expect(day(days, 10)).toMatchObject({ entitledMinutes: 1440, down: { user: 720 } });
    expect(day(days, 11)).toMatchObject({ entitledMinutes: 1440, down: { user: 1440 } });
    expect(day(days, 12)).toMatchObject({ down: { user: 720, ours: 2 }, healthyMinutes: 718 });
    expect(totalsOf(days).down.user).toBe(2880);
  });

  test('payment overdue: healthy through the grace period, billing from the stop, ours from the recovery to the restart', () => {
    const days = ledger([
      ...start(1, '00'),
      bill(at(14, '00:00'), 'payment.failed', { graceEndsAt: at(17, '00:00') }),
      t(at(14, '00:00'), 'running', 'payment_failed'),
      t(at(17, '00:00'), 'stopping', 'payment_overdue'),
      t(at(17, '00:01'), 'stopped', 'payment_overdue'),
      bill(at(18, '00:00'), 'payment.recovered'),
      ...start(18, '01'),
    ]);
    expect(day(days, 16)).toMatchObject({ entitledMinutes: 1440, healthyMinutes: 1440 });
    expect(day(days, 17)).toMatchObject({ entitledMinutes: 0, down: { billing: 1440 } });
    expect(day(days, 18)).toMatchObject({ entitledMinutes: 1440, down: { ours: 62 }, healthyMinutes: 1440 - 62 });
  });

  test('stopped by the user, then billing: a downgrade is billing’s from the event, an upgrade gives it back', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(5, '00:00'), 'stopped', 'user_requested'),
      bill(at(6, '12:00'), 'tier.changed', { tier: 'free' }),
      bill(at(8, '00:00'), 'tier.changed', { tier: 'elite' }),
    ]);
    expect(day(days, 6)).toMatchObject({ entitledMinutes: 720, down: { user: 720, billing: 720 } });
    expect(day(days, 7)).toMatchObject({ entitledMinutes: 0, down: { billing: 1440 } });
    expect(day(days, 8)).toMatchObject({ entitledMinutes: 1440, down: { user: 1440 } });
  });

  test('stopped by the user, then a failed payment: billing’s once the grace period ends, until the recovery', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(5, '00:00'), 'stopped', 'user_requested'),
      bill(at(6, '00:00'), 'payment.failed', { graceEndsAt: at(9, '06:00') }),
      bill(at(10, '12:00'), 'payment.recovered'),
    ]);
    expect(day(days, 8).down).toMatchObject({ user: 1440, billing: 0 });
    expect(day(days, 9).down).toMatchObject({ user: 360, billing: 1080 });
    expect(day(days, 10).down).toMatchObject({ user: 720, billing: 720 });
  });

  test('a downgrade while running: billing from the stop; the refused start of a user with no machine counts nothing', () => {
    const days = ledger([
      ...start(1, '00'),
      bill(at(29, '12:00'), 'tier.changed', { tier: 'free' }),
      t(at(29, '12:00'), 'stopping', 'downgraded'),
      t(at(29, '12:01'), 'stopped', 'downgraded'),
    ]);
    expect(day(days, 29)).toMatchObject({ entitledMinutes: 720, down: { billing: 720 } });
    expect(day(days, 31)).toMatchObject({ entitledMinutes: 0, down: { billing: 1440 } });
    const refused = ledger([
      t(at(2, '10:00'), 'stopping', 'not_entitled'),
      t(at(2, '10:00'), 'stopped', 'not_entitled'),
    ]);
    expect(totalsOf(refused)).toMatchObject({ entitledMinutes: 0, down: { billing: 0 } });
  });

  test('an error is down until the next start, as its cause says (ours for a self-heal that gave up, Fly for an outage)', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(2, '00:00'), 'starting', 'unhealthy:feed_idle', at(1, '23:45')),
      t(at(2, '00:10'), 'stopping', 'unhealthy:feed_idle'),
      t(at(2, '00:11'), 'error', 'unhealthy:feed_idle'),
      ...start(2, '03'),
      t(at(3, '00:00'), 'stopping', 'fly_api_outage'),
      t(at(3, '00:01'), 'error', 'fly_api_outage'),
    ]);
    expect(day(days, 1).down.ours).toBe(2 + 15);
    expect(day(days, 2).down.ours).toBe(3 * 60 + 2);
    expect(day(days, 3).down).toMatchObject({ fly: 1440, ours: 0 });
  });

  test('the state at `from` follows from records before it; minutes stop at `now`', () => {
    const records = [...start(1, '00'), t(at(10, '00:00'), 'stopped', 'user_requested')];
    const days = ledger(records, '2026-03-15', '2026-03-16', Date.parse(at(16, '06:00')));
    expect(days.map((d) => [d.day, d.down.user])).toEqual([
      ['2026-03-15', 1440],
      ['2026-03-16', 360],
    ]);
  });

  test('minutes are whole and add up to the day’s total', () => {
    // 0.5 + 0.5 + 0.5 + 1437.5 = 1439: the first two halves round up, the others down.
    expect(roundMinutes([30_000, 30_000, 30_000, 60_000 * 1439 - 90_000])).toEqual([1, 1, 0, 1437]);
    expect(roundMinutes([0, 0])).toEqual([0, 0]);
  });
});

describe('the SLO and its credit', () => {
  test('the credit table: none at or above the SLO, 10 % below, 25 % below 99, 50 % below 95', () => {
    expect(creditPercent(99.5, 99.5)).toBe(0);
    expect(creditPercent(99.49, 99.5)).toBe(10);
    expect(creditPercent(98.99, 99.5)).toBe(25);
    expect(creditPercent(94.9, 99.5)).toBe(50);
    expect(creditPercent(null, 99.5)).toBe(0);
    // A laxer SLO: below it is at least 25 %, below 95 half.
    expect(creditPercent(97.5, 98)).toBe(25);
  });

  test('monthly: only ours and Fly count against it; user and billing minutes do not', () => {
    const days = ledger([
      ...start(1, '00'),
      t(at(3, '12:00'), 'starting', 'unhealthy:feed_idle', at(3, '11:00')),
      t(at(3, '12:00'), 'running', 'recovered'),
      t(at(10, '00:00'), 'stopped', 'user_requested'),
      ...start(20, '00'),
    ]);
    const [march] = monthlyUptime(days, { sloPercent: 99.9, monthlyFeeUsd: 40 });
    // 2 + 60 + 2 minutes ours of 21 entitled days less the user's 10: 1 − 64 / 30240 = 99.788 % < 99.9 → 10 % of $40.
    expect(march).toMatchObject({ month: '2026-03', days: 31, partial: false, sloMet: false, creditPercent: 10 });
    expect(march!.down).toMatchObject({ ours: 64, user: 10 * 1440 });
    expect(march!.availabilityPercent).toBe(99.788);
    expect(march!.creditUsd).toBe(4);
  });
});
