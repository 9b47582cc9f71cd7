import { mb, median, percentile, report, round, type Row } from './lib/report';
import type { BudgetRun } from './runtime-budget';
import { budgetBoundaryRows, budgetRows, budgetVerdicts } from './runtime-budget-report';
import { INTERVALS, WARMUP } from './runtime-market';

/** What one run of the runtime benchmark measured (runtime.ts, `runRuntime`). */
export interface RuntimeFigures {
  minutes: number;
  framesIn: number;
  closes: number;
  signals: number;
  /** Candles + signals the clients received, and the WebSocket frames they came in. */
  got: { received: number; frames: number };
  /** Clients dropped as slow consumers, at the end. */
  dropped: number;
  wallS: number;
  engineDoneS: number;
  cpuS: number;
  perCore: number;
  closesPerCore: number;
  /** Close → client ms at the 15-minute boundaries (or every step when there were none). */
  burst: number[];
  fromClose: number[];
  burstCpuMs: number;
  streams: number;
  warmRss: number;
  mem: { peakRss: number; rssBefore: number; heapUsed: number };
  naive: { incrementalRate: number; naiveRate: number; ratio: number };
}

/** The result table of a run. */
export function runtimeRows(f: RuntimeFigures): Row[] {
  const { burst, mem, naive } = f;
  return [
    { figure: 'market minutes replayed (throughput phase)', value: f.minutes },
    { figure: 'kline frames in (messages)', value: f.framesIn },
    { figure: 'closed candles among them', value: f.closes },
    { figure: 'signals fired', value: f.signals },
    { figure: 'candles + signals delivered to clients', value: f.got.received },
    { figure: 'WebSocket frames delivered to clients', value: f.got.frames },
    { figure: 'clients dropped (slow consumer)', value: f.dropped },
    { figure: 'wall s (until all delivered)', value: round(f.wallS, 2) },
    { figure: 'last close evaluated after s', value: round(f.engineDoneS, 2) },
    { figure: 'runtime CPU s (runtime process)', value: round(f.cpuS, 2) },
    { figure: 'messages / s per core (runtime CPU)', value: Math.round(f.perCore) },
    { figure: 'closed candles / s per core (runtime CPU)', value: Math.round(f.closesPerCore) },
    { figure: 'candle close → client p50 ms (15m boundary: every stream closes)', value: round(median(burst), 2) },
    {
      figure: 'candle close → client p99 ms (15m boundary: every stream closes)',
      value: round(percentile(burst, 99), 2),
    },
    { figure: 'candle close → client p99 ms (every minute step)', value: round(percentile(f.fromClose, 99), 2) },
    { figure: `runtime CPU ms per burst of ${f.streams} closes (latency phase)`, value: round(f.burstCpuMs, 1) },
    { figure: 'peak RSS MB (runtime process)', value: mb(mem.peakRss) },
    { figure: 'RSS MB of the process before the runtime was built', value: mb(mem.rssBefore) },
    { figure: `RSS MB after warm-up (${f.streams} streams × ${WARMUP} candles from REST)`, value: mb(f.warmRss) },
    { figure: 'heap used MB at the end', value: mb(mem.heapUsed) },
    { figure: 'engine only: incremental candles / s', value: Math.round(naive.incrementalRate) },
    { figure: 'engine only: naive (recompute from scratch) candles / s', value: Math.round(naive.naiveRate) },
    { figure: 'incremental / naive (×)', value: round(naive.ratio, 0) },
  ] as Row[];
}

/** Runs side by side (`run 1`, `run 2`, …) with the median of each numeric figure; one run as it is. */
export function sideBySide(runs: Row[][]): Row[] {
  if (runs.length === 1) return runs[0]!;
  return runs[0]!.map((row, i) => {
    const values = runs.map((r) => r[i]?.value ?? '');
    const numeric = values.every((v) => typeof v === 'number' && !Number.isNaN(v));
    const out: Row = { figure: row.figure ?? '' };
    values.forEach((v, r) => (out[`run ${r + 1}`] = v));
    out.median = numeric
      ? // Small figures (cores used: 0.0151) keep their digits.
        round(median(values as number[]), Math.abs(median(values as number[])) < 1 ? 4 : 2)
      : values.every((v) => v === values[0])
        ? values[0]!
        : '';
    return out;
  });
}

export interface WholeCoreRun {
  rows: Row[];
  perCore: number;
  closesPerCore: number;
  p99: number;
  peakRssMb: number;
}

/**
 * Writes the report (bench/results): the whole-core runs side by side, then the budget runs', with
 * the targets met or missed on the medians. `label` (BENCH_LABEL) says what was measured, when it
 * is not the working tree as it stands (a before/after comparison).
 */
export function reportRuntime(
  whole: WholeCoreRun[],
  budget: BudgetRun[],
  run: { symbols: number; traders: number; clients: number; updates: number; startLoad: number[]; label?: string },
) {
  const { symbols, traders, clients, updates, startLoad } = run;
  const med = (pick: (r: WholeCoreRun) => number) => median(whole.map(pick));
  const perCore = med((r) => r.perCore);
  const closesPerCore = med((r) => r.closesPerCore);
  const p99 = med((r) => r.p99);
  const peakRssMb = med((r) => r.peakRssMb);
  const runs = (n: number) => (n > 1 ? ` (${n} runs, medians)` : '');
  const tables: { caption?: string; rows: Row[] }[] = [];
  if (whole.length > 0)
    tables.push({ caption: `whole cores${runs(whole.length)}`, rows: sideBySide(whole.map((r) => r.rows)) });
  if (budget.length > 0) {
    const b = budget[0]!;
    tables.push({
      caption: `budget: ${round(b.o.cpuFraction, 4)} core, ${b.o.memoryMb} MB (cgroup v1), ${b.o.clients} browsers, live rate${runs(budget.length)}`,
      rows: sideBySide(budget.map(budgetRows)),
    });
    tables.push({
      caption: 'budget: each 15-minute boundary (all 900 streams close)',
      rows: budgetBoundaryRows(budget),
    });
  }
  const notes: string[] = [];
  if (run.label) notes.push(`Measured: ${run.label}`);
  if (whole.length > 0)
    notes.push(
      `Targets${whole.length > 1 ? ' (medians)' : ''}: ≥ 100k msgs/s/core ${perCore >= 100_000 ? 'met' : 'MISSED'} (${Math.round(perCore)}; closed candles alone ${Math.round(closesPerCore)}/s/core); p99 ≤ 10 ms ${p99 <= 10 ? 'met' : 'MISSED'} (${round(p99, 2)}); RSS ≤ 150 MB ${peakRssMb <= 150 ? 'met' : 'MISSED'} (${peakRssMb}).`,
      `A "message" is one Binance combined-stream kline frame into the feed: per candle ${updates} in-progress frame(s) and the closing one (x: true). Frames are JSON text as Binance sends it, over a real WebSocket into the runtime's own feed code.`,
      "Recorded data (BINANCE_DATA_DIR, read in place): 1m streams replay BTCUSDT 1m, 5m streams the BTC/ETH/SOL 5m files, 15m streams those aggregated; per-symbol offsets. Warm-up: 300 candles per stream from the feeder's REST. The runtime runs alone in its own process with the production heap cap (160 MB); clients in another; CPU and RSS are the runtime process's.",
      'Candles and signals reach clients batched (`candles` / `signals` frames, one per event-loop turn). p50/p99 "candle close → client": from the moment a minute\'s closing frames (framed beforehand, one socket write) are handed to the runtime\'s feed socket to their arrival at the slowest of 5 timed clients; the 15m boundary is the burst where all streams close at once.',
    );
  if (budget.length > 0)
    notes.push(
      budgetVerdicts(budget),
      `Budget run: the same bundle and V8 flags, started inside the cgroup (sh writes its pid to cgroup.procs, then execs node), so start and warm-up run under the budget too. Market clock: one market minute per ${budget[0]!.o.minuteMs / 1000} s of real time, ${budget[0]!.o.minutes} minutes (15m boundaries at the end of minutes ${budget[0]!.boundaries
        .filter((x) => x.kind === '15m')
        .map((x) => x.minute + 1)
        .join(
          ', ',
        )}); in-progress updates every ${budget[0]!.o.updateMs / 1000} s per stream, spread over ${budget[0]!.o.tickMs} ms ticks; each boundary's closes written at once. "Stored" = the sink's insertTradeSignal reached the host's in-process store (after engine, sink and browser queue). Recovery: from the burst's write until the runtime has read the burst and every frame written more than one tick earlier. Browsers and the feeder run outside the cgroup.`,
    );
  report('runtime', {
    title: `runtime: ${symbols} symbols × ${INTERVALS.length} intervals, ${traders} traders, ${clients} WebSocket clients, from Binance frames`,
    startLoad,
    tables,
    notes,
  });
}
