import type { UptimeReport } from '../common/uptime-slo';
import type { TimelinePage } from '../store/types';

/** Markdown tables of a timeline and an uptime report (the month test writes them for the issue note). */
export function monthReport(r: {
  timeline: TimelinePage;
  report: UptimeReport;
  expected: Record<'ours' | 'fly' | 'user' | 'billing', number>;
  healthy: number;
}): string {
  const cell = (v: unknown) => String(v ?? '').replace(/\|/g, '\\|');
  const table = (head: string[], rows: unknown[][]) =>
    [
      `| ${head.join(' | ')} |`,
      `| ${head.map(() => '---').join(' | ')} |`,
      ...rows.map((x) => `| ${x.map(cell).join(' | ')} |`),
    ].join('\n');
  const { report: u } = r;
  const t = u.totals;
  const round = (n: number) => Math.round(n * 10) / 10;
  return [
    '## Timeline (newest first)',
    table(
      ['at', 'kind', 'code', 'text'],
      r.timeline.entries.map((e) => [e.at.slice(0, 19).replace('T', ' '), e.kind, e.code, e.text]),
    ),
    `## Ledger ${u.from} … ${u.to} (minutes)`,
    table(
      ['day', 'entitled', 'healthy', 'ours', 'Fly', 'user', 'billing'],
      [
        ...u.days.map((d) => [
          d.day,
          d.entitledMinutes,
          d.healthyMinutes,
          d.down.ours,
          d.down.fly,
          d.down.user,
          d.down.billing,
        ]),
        ['**total**', t.entitledMinutes, t.healthyMinutes, t.down.ours, t.down.fly, t.down.user, t.down.billing],
        [
          '_what happened_',
          round(r.healthy + r.expected.ours + r.expected.fly + r.expected.user),
          round(r.healthy),
          round(r.expected.ours),
          round(r.expected.fly),
          round(r.expected.user),
          round(r.expected.billing),
        ],
      ],
    ),
    '## Months against the SLO',
    table(
      ['month', 'days', 'availability %', 'SLO %', 'met', 'credit %', 'credit USD'],
      u.months.map((m) => [
        m.month,
        m.days,
        m.availabilityPercent,
        m.sloPercent,
        m.sloMet,
        m.creditPercent,
        m.creditUsd,
      ]),
    ),
    '',
  ].join('\n\n');
}
