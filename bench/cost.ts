import { temporal } from '@temporalio/proto';
import { guestFor } from '../common/machine-sizes';
import { durationSeconds } from '../worker/reconcile-schedule';
import { HEALTH_SWEEP_DEFAULT_INTERVAL } from '../worker/health-sweep-schedule';
import { cpuPriorities, type CpuPriority, type LifecycleSettings } from '../workflows/contract';
import { ACTION_RULES, actionTypes, countChainActions, storageGbHours, totalActions } from './cost-actions';
import {
  SOURCES,
  envNumber,
  flyName,
  flyUsdPerSecond,
  loadPrices,
  productAssumptions,
  type Prices,
} from './cost-prices';
import { measureDetection } from './cost-detection';
import { simulateMonth, type MonthRun } from './cost-sim';
import { runBenchmark } from './lib/infra';
import { report, type Row } from './lib/report';

const DAY_S = 86_400;
const MONTH_DAYS = 30;
/** Shown even at zero (a zero says it was counted); the rest only when present. */
const ALWAYS_SHOWN = new Set<string>(actionTypes.slice(0, 9));
/** Issue 20's targets: Temporal actions per user per month, and how soon a sick machine is noticed. */
const TARGET_ACTIONS_USD = 0.15;
const TARGET_DETECTION_S = 300;

export interface CostOptions {
  days: number;
  variants: { label: string; settings: Partial<LifecycleSettings> }[];
  cpuPriority: CpuPriority;
  region: string;
  fleetUsers: number;
  reconcileIntervalS: number;
  /** The health sweep's period (HEALTH_SWEEP_INTERVAL), in seconds. */
  sweepIntervalS: number;
}

const usd = (x: number) => (x >= 0.1 ? x.toFixed(2) : x.toFixed(4));
const sizeOf = (e: temporal.api.history.v1.IHistoryEvent) =>
  temporal.api.history.v1.HistoryEvent.encode(e).finish().length;

/** One simulated month priced: actions by type (history, heartbeats, assumptions) and $ per user per 30 days. */
export function priceMonth(run: MonthRun, o: CostOptions, p: Prices) {
  const simDays = (run.endMs - run.startMs) / 1000 / DAY_S;
  const scale = MONTH_DAYS / simDays; // a shorter simulation (BENCH_COST_DAYS) is scaled to 30 days
  const perAction = p.actionUsdPerMillion / 1e6;
  const counted = countChainActions(run.chain);
  const history = actionTypes.map((t) => ({
    type: t,
    source: 'history',
    rule: ACTION_RULES[t],
    count: counted.actions[t] * scale,
  }));
  const heartbeats = {
    type: 'activity heartbeat',
    source: 'worker',
    rule: "heartbeats that reach the server (throttled ones don't count): the SDK sends the first at once, then at most one per 80 % of the heartbeat timeout, capped at the worker's 5 s; not in history: counted by an activity interceptor",
    count: run.heartbeats.recorded * scale,
  };
  const assumed = productAssumptions({
    days: MONTH_DAYS,
    reconcileIntervalS: o.reconcileIntervalS,
    sweepIntervalS: o.sweepIntervalS,
    fleetUsers: o.fleetUsers,
  });
  const perUser = assumed.filter((a) => a.type !== 'schedule (fleet)');
  const fleet = assumed.filter((a) => a.type === 'schedule (fleet)');
  const sum = (xs: { count: number }[]) => xs.reduce((a, x) => a + x.count, 0);

  const storage = storageGbHours(run.chain, sizeOf, { untilMs: run.endMs, retentionDays: p.retentionDays });
  const guest = guestFor[o.cpuPriority];
  const flyPerS = flyUsdPerSecond(p, guest, o.region);
  const notStartedS = run.notStartedSeconds * scale;
  const rootfsUsdPerS = (p.rootfsGb * p.flyRootfsUsdPerGb30Days) / (MONTH_DAYS * DAY_S);
  const lines: { line: string; side: 'temporal' | 'fly'; usd: number }[] = [
    { line: 'Temporal actions: workflow history (measured)', usd: totalActions(counted.actions) * scale * perAction },
    { line: 'Temporal actions: heartbeats (measured at the worker)', usd: heartbeats.count * perAction },
    { line: 'Temporal actions: queries and rollouts (assumed, not in history)', usd: sum(perUser) * perAction },
    {
      line: `Temporal actions: reconcile and health sweep schedules (fleet / ${o.fleetUsers} users)`,
      usd: sum(fleet) * perAction,
    },
    { line: 'Temporal active storage', usd: storage.activeGbHours * scale * p.activeUsdPerGbHour },
    {
      line: `Temporal retained storage (${p.retentionDays} d retention)`,
      usd: storage.retainedGbHours * scale * p.retainedUsdPerGbHour,
    },
    { line: `Fly compute: ${flyName(guest)} in ${o.region}`, usd: flyPerS * (MONTH_DAYS * DAY_S - notStartedS) },
    { line: 'Fly rootfs while not started (provisioning, restart)', usd: rootfsUsdPerS * notStartedS },
  ].map((l) => ({ ...l, side: l.line.startsWith('Fly') ? ('fly' as const) : ('temporal' as const) }));
  const total = (side: 'temporal' | 'fly') => lines.filter((l) => l.side === side).reduce((a, l) => a + l.usd, 0);
  const temporalUsd = total('temporal');
  const flyUsd = total('fly');
  const actionsUsd = lines.filter((l) => l.line.startsWith('Temporal actions')).reduce((a, l) => a + l.usd, 0);
  return {
    actionsUsd,
    actions: [...history.filter((r) => r.count > 0 || ALWAYS_SHOWN.has(r.type)), heartbeats, ...perUser, ...fleet],
    historyUsd: totalActions(counted.actions) * scale * perAction,
    lines,
    temporalUsd,
    flyUsd,
    facts: {
      runs: counted.runs,
      events: counted.events,
      'workflow tasks': counted.workflowTasks,
      'history MB (all runs)': (storage.totalBytes / 1024 ** 2).toFixed(2),
      'heartbeat() calls → recorded': `${run.heartbeats.calls} → ${run.heartbeats.recorded}`,
      'Fly not started, s': run.notStartedSeconds.toFixed(1),
      'simulated days': simDays.toFixed(1),
      'wall s': run.wallSeconds.toFixed(0),
    },
  };
}

export async function runCost(o: CostOptions) {
  const months: MonthRun[] = [];
  for (const v of o.variants)
    months.push(await simulateMonth({ ...v, days: o.days, cpuPriority: o.cpuPriority, region: o.region }));
  const p = loadPrices();
  const priced = months.map((m) => priceMonth(m, o, p));
  const perAction = p.actionUsdPerMillion / 1e6;

  const actionRows: Row[] = [];
  const keys = [...new Set(priced.flatMap((x) => x.actions.map((a) => `${a.type}|${a.source}|${a.rule}`)))];
  for (const key of keys) {
    const [type, source, rule] = key.split('|') as [string, string, string];
    const row: Row = { action: type, source };
    priced.forEach((x, i) => {
      const n = x.actions.find((a) => `${a.type}|${a.source}|${a.rule}` === key)?.count ?? 0;
      row[`${months[i]!.label}: count`] = Math.round(n);
      row[`${months[i]!.label}: $`] = usd(n * perAction);
    });
    row.rule = rule;
    actionRows.push(row);
  }
  const totalRow: Row = { action: '**total**', source: '' };
  priced.forEach((x, i) => {
    const n = x.actions.reduce((a, r) => a + r.count, 0);
    totalRow[`${months[i]!.label}: count`] = Math.round(n);
    totalRow[`${months[i]!.label}: $`] = usd(n * perAction);
  });
  actionRows.push(totalRow);

  const costRows: Row[] = priced[0]!.lines.map(({ line }, n) => {
    const row: Row = { 'per user per month': line };
    priced.forEach((x, i) => (row[months[i]!.label] = usd(x.lines[n]!.usd)));
    return row;
  });
  const summary = (name: string, f: (x: (typeof priced)[number]) => string) => {
    const row: Row = { 'per user per month': name };
    priced.forEach((x, i) => (row[months[i]!.label] = f(x)));
    return row;
  };
  costRows.push(
    summary('**Temporal actions**', (x) => usd(x.actionsUsd)),
    summary('**Temporal (orchestration)**', (x) => usd(x.temporalUsd)),
    summary('**Fly (the machine)**', (x) => usd(x.flyUsd)),
    summary('**total $ per user per month**', (x) => usd(x.temporalUsd + x.flyUsd)),
    summary('**ratio orchestration / machine**', (x) => (x.temporalUsd / x.flyUsd).toFixed(2)),
    summary('ratio, the workflow history alone (renewal loop) / machine', (x) => (x.historyUsd / x.flyUsd).toFixed(2)),
  );
  const factRows: Row[] = months.map((m, i) => ({
    variant: m.label,
    renewalInterval: m.settings.renewalInterval,
    continueAsNewEvery: m.settings.continueAsNewEvery,
    maxRestarts: m.settings.maxRestarts,
    ...priced[i]!.facts,
    'what happened': m.log.join('; '),
  }));
  const flyRows: Row[] = cpuPriorities.map((c) => ({
    cpuPriority: c,
    size: flyName(guestFor[c]),
    [`$ / 30 days in ${o.region}`]: usd(flyUsdPerSecond(p, guestFor[c], o.region) * MONTH_DAYS * DAY_S),
  }));
  return { months, priced, actionRows, costRows, factRows, flyRows, prices: p };
}

const detectionTrials = envNumber('BENCH_COST_DETECTION_TRIALS', 3);
// The month runs on its own time-skipping server; detection needs real time, so the dev server (when timed).
runBenchmark(module, { postgres: true, temporal: detectionTrials > 0 }, async (startLoad) => {
  const candidate: Partial<LifecycleSettings> = {};
  if (process.env.BENCH_COST_RENEWAL_INTERVAL) candidate.renewalInterval = process.env.BENCH_COST_RENEWAL_INTERVAL;
  if (process.env.BENCH_COST_CONTINUE_AS_NEW_EVERY)
    candidate.continueAsNewEvery = envNumber('BENCH_COST_CONTINUE_AS_NEW_EVERY', 50);
  const variants = [
    ...(process.env.BENCH_COST_SKIP_DEFAULT ? [] : [{ label: 'default', settings: {} }]),
    ...(Object.keys(candidate).length ? [{ label: 'candidate', settings: candidate }] : []),
  ];
  const cpuPriority = (process.env.BENCH_COST_CPU_PRIORITY ?? 'normal') as CpuPriority;
  if (!cpuPriorities.includes(cpuPriority))
    throw new Error(`BENCH_COST_CPU_PRIORITY must be one of ${cpuPriorities.join(', ')}`);
  const sweepInterval = process.env.HEALTH_SWEEP_INTERVAL ?? HEALTH_SWEEP_DEFAULT_INTERVAL;
  const o: CostOptions = {
    days: envNumber('BENCH_COST_DAYS', MONTH_DAYS),
    variants,
    cpuPriority,
    region: process.env.BENCH_COST_REGION ?? 'ams',
    fleetUsers: envNumber('BENCH_COST_FLEET_USERS', 1000),
    reconcileIntervalS: durationSeconds(process.env.RECONCILE_INTERVAL ?? '5 minutes'),
    sweepIntervalS: durationSeconds(sweepInterval),
  };
  const r = await runCost(o);
  const p = r.prices;
  const detections = detectionTrials > 0 ? await measureDetection({ trials: detectionTrials, sweepInterval }) : [];
  const noticedS = detections.map((d) => d.noticedMs / 1000);
  const detectionRows: Row[] = detections.map((d, i) => ({
    trial: i + 1,
    'noticed, s': (d.noticedMs / 1000).toFixed(1),
    'recovered, s': (d.recoveredMs / 1000).toFixed(1),
    record: d.reason,
  }));
  const worstS = Math.max(...noticedS);
  const meanS = noticedS.reduce((a, x) => a + x, 0) / (noticedS.length || 1);
  const met = (ok: boolean) => (ok ? 'met' : '**MISSED**');
  const targets = [
    ...r.priced.map(
      (x, i) =>
        `target: Temporal actions ≤ $${TARGET_ACTIONS_USD} per user per month (${r.months[i]!.label}): ${met(x.actionsUsd <= TARGET_ACTIONS_USD)} ($${usd(x.actionsUsd)}; with storage $${usd(x.temporalUsd)})`,
    ),
    detections.length
      ? `detection: a running machine turning sick (its runtime answers /health 503) was noticed (its workflow's restart record) after ${noticedS.map((x) => x.toFixed(1)).join(', ')} s (mean ${meanS.toFixed(1)} s, worst ${worstS.toFixed(1)} s) with the health sweep every ${sweepInterval} and renewals hourly; target ≤ ${TARGET_DETECTION_S} s: ${met(worstS <= TARGET_DETECTION_S)}`
      : 'detection: not measured (BENCH_COST_DETECTION_TRIALS=0)',
  ];
  report('cost', {
    title: 'cost: $ per user per month, orchestration included',
    startLoad,
    tables: [
      { caption: `$ per user per month (cpuPriority ${o.cpuPriority}, region ${o.region})`, rows: r.costRows },
      { caption: 'Temporal Cloud actions per user per month, by type', rows: r.actionRows },
      { caption: 'the simulated month', rows: r.factRows },
      { caption: 'Fly machine sizes (guestFor)', rows: r.flyRows },
      ...(detectionRows.length
        ? [{ caption: `detection (dev server, real time; health sweep every ${sweepInterval})`, rows: detectionRows }]
        : []),
    ],
    notes: [
      ...targets,
      `Actions: ${SOURCES.temporalActions} (rules per type above); priced at $${p.actionUsdPerMillion} per million (COST_ACTION_USD_PER_MILLION; Essentials list price, the first-5M tier, ${SOURCES.temporalPricing}).`,
      `Storage: active $${p.activeUsdPerGbHour}/GBh, retained $${p.retainedUsdPerGbHour}/GBh (${SOURCES.temporalPricing}); bytes = encoded protobuf history events; active = each event from when it was written until its run closed (or the month ended); retained = each closed run × ${p.retentionDays} days (COST_RETENTION_DAYS).`,
      `Fly: iad $${p.flySharedCpuUsdPer30Days} (shared-cpu-1x 256 MB) / $${p.flyPerformanceCpuUsdPer30Days} (performance-1x 2 GB) per 30 days, extra RAM $${p.flyRamUsdPerGb30Days}/GB, × the region's markup; rootfs of a stopped machine $${p.flyRootfsUsdPerGb30Days}/GB per 30 days × ${p.rootfsGb} GB (${SOURCES.flyPricing}).`,
      `Not included: the Temporal plan's fee (Essentials: the greater of $${p.planUsdPerMonth}/month or 5 % of usage, per account: $${usd(p.planUsdPerMonth / o.fleetUsers)} per user at ${o.fleetUsers} users), Fly egress and IPs, Postgres, the API and worker machines.`,
      'Time-skipping test server, real activities (Postgres, fly-local with test/fixtures/fake-runtime.mjs machines); activityHeartbeatSeconds 3600 so this server cannot time heartbeats out (the recorded-heartbeat count is the same: the worker caps the throttle at 5 s). Heartbeats are measured in real time against fly-local, where a start takes a second or two; on Fly a start of ~10 s adds ~2 heartbeats per wait activity, per start or restart.',
    ],
  });
});
