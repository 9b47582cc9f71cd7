import type { BillingFacts, Entitlement } from '../common/entitlement';
import type { Machine } from '../fly/machines';
import type { MachineEvent, MachineRow } from '../store/types';
import type { ReconcilePlan } from '../workflows/reconcile-plan';
import type { MachineListing } from './fleet';
import type { CheckedReport, CheckedStatus } from './schemas';
import type { Described } from './sources';
import { count, formatAge, formatInstant, formatPairs, formatTable, formatWhen, section, type Column } from './table';

/** What the commands print on a terminal, from what they read. Pure. */

export function renderMachines(list: MachineListing[], nowMs: number): string {
  const columns: Column<MachineListing>[] = [
    { header: 'USER', value: (m) => m.userId },
    { header: 'STATE', value: (m) => m.state },
    { header: 'TIER', value: (m) => m.tier },
    { header: 'REGION', value: (m) => m.region },
    { header: 'FLY MACHINE', value: (m) => m.flyMachineId },
    { header: 'SINCE', value: (m) => formatWhen(m.since, nowMs) },
    { header: 'LAST HEALTHY', value: (m) => formatWhen(m.lastHealthyAt, nowMs) },
    { header: 'NOTE', value: (m) => m.note },
  ];
  return `${formatTable(columns, list)}\n${count(list.length, 'machine')}\n`;
}

export interface FlyMachineView {
  id: string;
  name: string | null;
  state: string | null;
  image: string | null;
  region: string | null;
  privateIp: string | null;
  createdAt: string | null;
}

export const flyMachineView = (m: Machine): FlyMachineView => ({
  id: m.id ?? '?',
  name: m.name ?? null,
  state: m.state ?? null,
  image: m.config?.image ?? null,
  region: m.region ?? null,
  privateIp: m.private_ip ?? null,
  createdAt: m.created_at ?? null,
});

/** Everything `show` found about one user's machine. */
export interface ShowView {
  userId: string;
  workflow: Described | null;
  /** `workflow`: the status query answered; `row`: no workflow runs, or it did not answer. */
  source: 'workflow' | 'row';
  status: CheckedStatus | null;
  statusError: string | null;
  row: MachineRow | null;
  /** Oldest first. */
  events: MachineEvent[];
  flyMachines: FlyMachineView[];
  flyError: string | null;
  billing: { facts: BillingFacts; entitlement: Entitlement };
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');

function stateLine(v: ShowView, nowMs: number): string {
  if (v.status) {
    const why = v.status.reason ? ` (${v.status.reason})` : '';
    return `${v.status.state}${why} since ${formatWhen(v.status.since, nowMs)} · the workflow's status query`;
  }
  const from = v.statusError ? `status query unanswered: ${v.statusError}` : 'no workflow runs';
  if (!v.row) return `unknown · ${from}`;
  return `${v.row.status} since ${formatWhen(v.row.updatedAt.toISOString(), nowMs)} · the cloud_machines row (${from})`;
}

export function renderShow(v: ShowView, nowMs: number): string {
  const s = v.status;
  const w = v.workflow;
  const row = v.row;
  const e = v.billing.entitlement;
  const head = formatPairs([
    ['user', v.userId],
    [
      'workflow',
      w ? `${w.workflowId} · ${w.status} · run ${w.runId} · started ${formatWhen(w.startTime, nowMs)}` : null,
    ],
    ['state', stateLine(v, nowMs)],
    [
      'fly machine',
      s ? `${s.machineId ?? 'none'} in ${s.region}` : row && `${row.machineId ?? 'none'} in ${row.region}`,
    ],
    ['last healthy', formatWhen(s ? s.lastHealthyAt : (row?.lastHealthyAt?.toISOString() ?? null), nowMs)],
    ['last renewed', s ? formatWhen(s.lastRenewedAt, nowMs) : null],
    [
      'row',
      row &&
        `${row.status} · machine ${row.machineId ?? 'none'} · updated ${formatWhen(row.updatedAt.toISOString(), nowMs)}` +
          (row.errorMessage ? ` · ${row.errorMessage}` : ''),
    ],
  ]);
  const payment =
    e.paymentState === 'ok'
      ? 'ok'
      : `overdue since ${formatInstant(e.overdueSince) ?? '?'}, grace ends ${formatInstant(e.graceEndsAt) ?? '?'}`;
  const billing = formatPairs([
    ['tier', `${e.tier ?? 'none'} (from ${e.tierSource})`],
    ['payment', payment],
    ['entitled', `${e.entitled ? 'yes' : 'no'}: ${e.detail}`],
  ]);
  const fly = v.flyError
    ? `  Fly API failed: ${v.flyError}`
    : v.flyMachines.length
      ? indent(
          formatTable<FlyMachineView>(
            [
              { header: 'ID', value: (m) => m.id },
              { header: 'STATE', value: (m) => m.state },
              { header: 'REGION', value: (m) => m.region },
              { header: 'PRIVATE IP', value: (m) => m.privateIp },
              { header: 'IMAGE', value: (m) => m.image },
              { header: 'CREATED', value: (m) => formatInstant(m.createdAt) },
            ],
            v.flyMachines,
          ),
        )
      : null;
  const timeline = v.events.length
    ? indent(
        formatTable<MachineEvent>(
          [
            { header: 'AT', value: (ev) => formatInstant(ev.occurredAt.toISOString()) },
            { header: 'FROM', value: (ev) => ev.fromStatus },
            { header: 'TO', value: (ev) => ev.toStatus },
            { header: 'FLY MACHINE', value: (ev) => ev.flyMachineId },
            { header: 'REASON', value: (ev) => ev.reason },
          ],
          v.events,
        ),
      )
    : null;
  return [
    head,
    section('Billing', indent(billing)),
    section('Fly machines', fly),
    section(`Timeline (machine_events, last ${v.events.length}, oldest first)`, timeline),
  ].join('\n\n');
}

interface ActionLine {
  action: string;
  target: string;
  userId: string | null;
  detail: string;
}
const actionColumns: Column<ActionLine>[] = [
  { header: 'ACTION', value: (a) => a.action },
  { header: 'TARGET', value: (a) => a.target },
  { header: 'USER', value: (a) => a.userId },
  { header: 'WHY', value: (a) => a.detail },
];
const actions = (lines: ActionLine[]) => (lines.length ? formatTable(actionColumns, lines) : 'nothing to do');

export function renderPlan(
  plan: ReconcilePlan,
  seen: { machines: number; workflows: number; rows: number },
  minAgeSeconds: number,
): string {
  const lines: ActionLine[] = [
    ...plan.repair.map((a) => ({
      action: 'repair',
      target: 'row',
      userId: a.userId,
      detail:
        a.kind === 'ended'
          ? `row says ${a.from} but no workflow runs: stopped or error`
          : `row says ${a.from}; the workflow says running on ${a.machineId ?? 'none'}`,
    })),
    ...plan.destroy.map((a) => ({
      action: 'destroy',
      target: a.machineId,
      userId: a.userId,
      detail: a.kind === 'orphan' ? 'orphan: no running workflow' : `duplicate: the workflow owns ${a.keep ?? '?'}`,
    })),
    ...plan.signal.map((a) => ({
      action: 'signal',
      target: a.workflowId,
      userId: a.userId,
      detail: `machine ${a.machineId} vanished`,
    })),
    ...plan.nudge.map((a) => ({ action: 'nudge', target: a.workflowId, userId: a.userId, detail: a.detail })),
  ];
  return (
    `dry run (nothing done): seen ${count(seen.machines, 'Fly machine')}, ${count(seen.workflows, 'workflow')}, ${count(seen.rows, 'row')}; ` +
    `ignoring anything younger than ${formatAge(minAgeSeconds * 1000)}\n${actions(lines)}\n`
  );
}

export function renderReport(report: CheckedReport, workflowId: string): string {
  const lines: ActionLine[] = [
    ...report.repaired.map((a) => ({
      action: 'repaired',
      target: 'row',
      userId: a.userId,
      detail: `${a.from} → ${a.to}`,
    })),
    ...report.destroyed.map((a) => ({
      action: 'destroyed',
      target: a.machineId,
      userId: a.userId,
      detail: `${a.kind}${a.keep ? ` (kept ${a.keep})` : ''}: ${a.outcome}`,
    })),
    ...report.signalled.map((a) => ({
      action: 'signalled',
      target: a.workflowId,
      userId: a.userId,
      detail: `machine ${a.machineId} vanished`,
    })),
    ...report.nudged.map((a) => ({ action: 'nudged', target: a.workflowId, userId: a.userId, detail: a.detail })),
    ...report.skipped.map((a) => ({
      action: 'skipped',
      target: a.target,
      userId: null,
      detail: `${a.action}: ${a.outcome}`,
    })),
  ];
  return (
    `${workflowId}: seen ${count(report.machinesSeen, 'Fly machine')}, ${count(report.workflowsSeen, 'workflow')}, ${count(report.rowsSeen, 'row')}\n` +
    `${actions(lines)}\n`
  );
}
