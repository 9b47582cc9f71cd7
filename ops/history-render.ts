import type { UptimeReport } from '../common/uptime-slo';
import type { MachineTimelineEntry } from '../store/types';
import { count, formatInstant, formatTable, type Column } from './table';

/** What `ops timeline` and `ops uptime` print on a terminal. Pure. */

export function renderTimeline(userId: string, entries: MachineTimelineEntry[], more: boolean): string {
  const columns: Column<MachineTimelineEntry>[] = [
    { header: 'AT', value: (e) => formatInstant(e.at) },
    { header: 'KIND', value: (e) => e.kind },
    { header: 'CODE', value: (e) => e.code },
    { header: 'WHAT', value: (e) => e.text },
  ];
  const tail = more ? ' (older ones: --limit)' : '';
  const n = `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`;
  return `Timeline of ${userId}, newest first\n${formatTable(columns, entries)}\n${n}${tail}\n`;
}

/** One user's uptime for one calendar month of the range. */
export interface UptimeLine {
  userId: string;
  month: UptimeReport['months'][number];
}

const pct = (v: number | null) => (v === null ? null : `${v.toFixed(3)} %`);

/** The fleet's uptime: a line per user and month, worst availability first, and the credits owed. */
export function renderUptime(r: { from: string; to: string; sloPercent: number; lines: UptimeLine[] }): string {
  const columns: Column<UptimeLine>[] = [
    { header: 'USER', value: (l) => l.userId },
    { header: 'MONTH', value: (l) => `${l.month.month}${l.month.partial ? '*' : ''}` },
    { header: 'ENTITLED', value: (l) => String(l.month.entitledMinutes), align: 'right' },
    { header: 'HEALTHY', value: (l) => String(l.month.healthyMinutes), align: 'right' },
    { header: 'OURS', value: (l) => String(l.month.down.ours), align: 'right' },
    { header: 'FLY', value: (l) => String(l.month.down.fly), align: 'right' },
    { header: 'USER STOP', value: (l) => String(l.month.down.user), align: 'right' },
    { header: 'BILLING', value: (l) => String(l.month.down.billing), align: 'right' },
    { header: 'AVAILABILITY', value: (l) => pct(l.month.availabilityPercent), align: 'right' },
    {
      header: 'CREDIT',
      value: (l) => (l.month.creditPercent ? `${l.month.creditPercent} % $${l.month.creditUsd.toFixed(2)}` : null),
    },
  ];
  const owed = r.lines.reduce((a, l) => a + l.month.creditUsd, 0);
  const missed = r.lines.filter((l) => !l.month.sloMet).length;
  return [
    `Uptime ${r.from} … ${r.to} (minutes; SLO ${r.sloPercent} % a month, * = part of the month)`,
    formatTable(columns, r.lines),
    `${count(r.lines.length, 'user-month')}; ${missed} below the SLO; credits owed $${owed.toFixed(2)}`,
    '',
  ].join('\n');
}
