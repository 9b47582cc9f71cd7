import { mb, median, percentile, round, type Row } from './lib/report';
import type { BudgetRun } from './runtime-budget';

/** The budget run's figures: one row per figure (runtime-report.ts puts runs side by side). */
export function budgetRows(b: BudgetRun): Row[] {
  const byKind = (kind: string) => b.boundaries.filter((x) => x.kind === kind);
  const pooled = (kind: string, pick: (x: BudgetRun['boundaries'][number]) => number[]) => byKind(kind).flatMap(pick);
  const full = pooled('15m', (x) => x.toStored);
  const recovery = (xs: BudgetRun['boundaries']) =>
    xs.some((x) => x.recoveryMs === undefined) ? Infinity : Math.max(...xs.map((x) => x.recoveryMs!));
  const pct = (part: number, whole: number) => round((100 * part) / Math.max(1, whole), 1);
  const m = b.cgMemory;
  return [
    {
      figure: 'CPU quota: cpu.cfs_quota_us / cpu.cfs_period_us',
      value: `${b.quota.quotaUs} / ${b.quota.periodUs} (${round(b.quota.quotaUs / b.quota.periodUs, 4)} core)`,
    },
    { figure: `memory limit MB (memory.limit_in_bytes${b.quota.memsw ? ' = memsw' : ''})`, value: b.o.memoryMb },
    { figure: 'warm-up under the budget s (start → 900 streams × 300 candles from REST)', value: round(b.warmupS, 1) },
    { figure: 'throttled periods during warm-up %', value: pct(b.warm.throttled, b.warm.periods) },
    { figure: 'live phase s (market minutes × real s each, + one more)', value: round(b.liveS, 1) },
    {
      figure: 'boundaries (of them 15m: every stream closes)',
      value: `${b.boundaries.length} (${byKind('15m').length})`,
    },
    { figure: 'frames sent (in-progress every 2 s per stream, and closes)', value: b.framesSent },
    { figure: 'frames dropped (sent, never read by the runtime)', value: b.dropped },
    { figure: 'frames late (read > 1 s after they were written)', value: b.lateFrames },
    { figure: 'max frame lag ms (written → read)', value: round(b.maxLagMs, 0) },
    { figure: 'max bytes waiting in the feeder (the runtime not reading)', value: b.maxQueuedBytes },
    { figure: 'malformed frames / feed reconnects', value: `${b.malformed} / ${b.reconnects}` },
    { figure: 'closes evaluated', value: b.closesEvaluated },
    { figure: 'signals stored', value: b.signalsStored },
    { figure: 'close → stored p50 ms, 15m boundaries', value: round(median(full), 0) },
    { figure: 'close → stored p99 ms, 15m boundaries', value: round(percentile(full, 99), 0) },
    { figure: 'close → stored max ms, 15m boundaries', value: round(Math.max(...full), 0) },
    {
      figure: 'close → stored p99 ms, 5m boundaries',
      value: round(
        percentile(
          pooled('5m', (x) => x.toStored),
          99,
        ),
        0,
      ),
    },
    {
      figure: 'close → stored p99 ms, 1m boundaries',
      value: round(
        percentile(
          pooled('1m', (x) => x.toStored),
          99,
        ),
        0,
      ),
    },
    {
      figure: 'close → browser p99 ms, 15m boundaries (10 browsers)',
      value: round(
        percentile(
          pooled('15m', (x) => x.toClient),
          99,
        ),
        0,
      ),
    },
    { figure: 'lag recovery ms after a 15m boundary (max)', value: round(recovery(byKind('15m')), 0) },
    { figure: 'lag recovery ms after any boundary (max)', value: round(recovery(b.boundaries), 0) },
    {
      figure: 'boundaries caught up before the next one',
      value: `${b.boundaries.filter((x) => x.recoveredBeforeNext).length} / ${b.boundaries.length}`,
    },
    { figure: 'runtime CPU s in the live phase', value: round(b.cpuS, 2) },
    { figure: 'cores used on average (live phase)', value: round(b.cores, 4) },
    { figure: 'cpu.stat live: throttled periods %', value: pct(b.live.throttled, b.live.periods) },
    { figure: 'cpu.stat live: nr_throttled / nr_periods', value: `${b.live.throttled} / ${b.live.periods}` },
    { figure: 'cpu.stat live: throttled_time s', value: round(b.live.throttledNs / 1e9, 2) },
    { figure: 'peak RSS MB (runtime process, getrusage)', value: mb(b.peakRss) },
    { figure: 'memory.max_usage_in_bytes MB (cgroup, page cache included)', value: mb(m.maxUsage) },
    ...(m.memswMaxUsage !== undefined
      ? [{ figure: 'memory.memsw.max_usage_in_bytes MB', value: mb(m.memswMaxUsage) }]
      : []),
    { figure: 'memory.failcnt (hits of the limit)', value: m.failcnt },
    { figure: 'OOM-killed (memory.oom_control oom_kill, exit)', value: oomText(b) },
  ];
}

const oomText = (b: BudgetRun) =>
  `${b.oomKilled ? 'yes' : 'no'} (oom_kill ${b.cgMemory.oomKills ?? 'n/a'}, under_oom ${b.cgMemory.underOom}, exit ${
    b.exit ? (b.exit.signal ?? `code ${b.exit.code}`) : 'running'
  })`;

/** One row per 15-minute boundary (every stream closes) of every run. */
export function budgetBoundaryRows(runs: BudgetRun[]): Row[] {
  return runs.flatMap((b, r) =>
    b.boundaries
      .filter((x) => x.kind === '15m')
      .map((x) => ({
        run: r + 1,
        'market minute ends': x.minute + 1,
        closes: x.closes,
        'signals stored': x.toStored.length,
        'stored p50 ms': round(median(x.toStored), 0),
        'stored p99 ms': round(percentile(x.toStored, 99), 0),
        'stored max ms': round(Math.max(...x.toStored), 0),
        'browser p99 ms': round(percentile(x.toClient, 99), 0),
        'recovery ms': x.recoveryMs === undefined ? 'never' : round(x.recoveryMs, 0),
        'throttled periods to next boundary': `${x.window.throttled} / ${x.window.periods}`,
      })),
  );
}

/** The three requirements, met or MISSED, over every run. */
export function budgetVerdicts(runs: BudgetRun[]): string {
  const full = runs.flatMap((b) => b.boundaries.filter((x) => x.kind === '15m'));
  const worstP99 = Math.max(...full.map((x) => percentile(x.toStored, 99)));
  const oom = runs.filter((b) => b.oomKilled).length;
  const notRecovered = runs.flatMap((b) => b.boundaries).filter((x) => !x.recoveredBeforeNext).length;
  return (
    `Budget requirements over ${runs.length} run(s): keeps up (close → stored p99 ≤ 1 s at every 15m boundary) ` +
    `${worstP99 <= 1000 ? 'met' : 'MISSED'} (worst ${round(worstP99, 0)} ms); never OOM ${oom === 0 ? 'met' : `MISSED (${oom} run(s))`}; ` +
    `recovers its lag before the next boundary ${notRecovered === 0 ? 'met' : `MISSED (${notRecovered} boundaries)`}.`
  );
}
