import type { ChaosOp, Disruption } from './faults';

/*
 * What a trial found, the run's summary, and how both are printed: one line per trial while the run
 * goes, and the summary as a markdown table (results.md keeps it).
 */

export interface TrialResult {
  trial: number;
  ops: Record<ChaosOp, number>;
  disruptions: Disruption[];
  killAfterMs: number;
  converged: boolean;
  convergeMs: number | null;
  /** Users ever seen with more than one live Fly machine during the trial. */
  duplicates: number;
  /** Live machines no running workflow owns, at convergence (before reconcile) and after one reconcile. */
  orphansBefore: number;
  orphansAfter: number;
  outcomes: Record<'running' | 'stopped' | 'error', number>;
  reconcile: { destroyed: number; repaired: number; signalled: number };
  violations: string[];
}

export interface ChaosSummary {
  seed: number;
  trials: number;
  converged: number;
  duplicates: number;
  orphansBefore: number;
  orphansAfter: number;
  medianConvergeMs: number | null;
  maxConvergeMs: number | null;
  results: TrialResult[];
}

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** The progress line a trial logs when it is over. */
export function trialLine(ops: ChaosOp[], result: TrialResult): string {
  const { killAfterMs, disruptions, convergeMs, orphansBefore, orphansAfter, outcomes } = result;
  return (
    `trial ${result.trial}: ${ops.join(',')} | kill +${killAfterMs} ms${disruptions.length ? ` + ${disruptions.join(' + ')}` : ''} | ` +
    `${result.converged ? `converged in ${(convergeMs! / 1000).toFixed(1)} s` : 'NOT converged'} | ` +
    `dup ${result.duplicates}, orphans ${orphansBefore}→${orphansAfter} | ` +
    `running ${outcomes.running}, stopped ${outcomes.stopped}, error ${outcomes.error}` +
    (result.violations.length ? ` | ${result.violations.join('; ')}` : '')
  );
}

export function summarize(seed: number, results: TrialResult[]): ChaosSummary {
  const times = results.flatMap((r) => (r.convergeMs === null ? [] : [r.convergeMs]));
  return {
    seed,
    trials: results.length,
    converged: results.filter((r) => r.converged && r.violations.length === 0).length,
    duplicates: results.reduce((n, r) => n + r.duplicates, 0),
    orphansBefore: results.reduce((n, r) => n + r.orphansBefore, 0),
    orphansAfter: results.reduce((n, r) => n + r.orphansAfter, 0),
    medianConvergeMs: median(times),
    maxConvergeMs: times.length ? Math.max(...times) : null,
    results,
  };
}

/** The summary as a markdown table, padded the way Prettier formats one (results.md stays format-clean). */
export function chaosTable(s: ChaosSummary): string {
  const sec = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);
  const restarts = (d: Disruption) => s.results.filter((r) => r.disruptions.includes(d)).length;
  const header = [
    'seed',
    'trials',
    'converged',
    'duplicates',
    'orphans (before → after one reconcile)',
    'converge median',
    'converge max',
    'fly-local restarts',
    'Temporal restarts',
  ];
  const row = [
    String(s.seed),
    String(s.trials),
    String(s.converged),
    String(s.duplicates),
    `${s.orphansBefore} → ${s.orphansAfter}`,
    sec(s.medianConvergeMs),
    sec(s.maxConvergeMs),
    String(restarts('fly-local restart')),
    String(restarts('temporal restart')),
  ];
  const widths = header.map((h, i) => Math.max(3, h.length, row[i]!.length));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), line(row)].join('\n');
}
