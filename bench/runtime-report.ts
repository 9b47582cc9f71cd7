import { mb, median, percentile, report, round, type Row } from './lib/report';
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
    { figure: 'incremental / naive', value: `${round(naive.ratio, 0)}×` },
  ] as Row[];
}

/** Writes the run's report (bench/results), with the targets met or missed. */
export function reportRuntime(
  r: { rows: Row[]; perCore: number; closesPerCore: number; p99: number; peakRssMb: number },
  run: { symbols: number; traders: number; clients: number; updates: number; startLoad: number[] },
) {
  const { symbols, traders, clients, updates, startLoad } = run;
  report('runtime', {
    title: `runtime: ${symbols} symbols × ${INTERVALS.length} intervals, ${traders} traders, ${clients} WebSocket clients, from Binance frames`,
    startLoad,
    tables: [{ rows: r.rows }],
    notes: [
      `Targets: ≥ 100k msgs/s/core ${r.perCore >= 100_000 ? 'met' : 'MISSED'} (${Math.round(r.perCore)}; closed candles alone ${Math.round(r.closesPerCore)}/s/core); p99 ≤ 10 ms ${r.p99 <= 10 ? 'met' : 'MISSED'} (${round(r.p99, 2)}); RSS ≤ 150 MB ${r.peakRssMb <= 150 ? 'met' : 'MISSED'} (${r.peakRssMb}).`,
      `A "message" is one Binance combined-stream kline frame into the feed: per candle ${updates} in-progress frame(s) and the closing one (x: true). Frames are JSON text as Binance sends it, over a real WebSocket into the runtime's own feed code.`,
      "Recorded data (BINANCE_DATA_DIR, read in place): 1m streams replay BTCUSDT 1m, 5m streams the BTC/ETH/SOL 5m files, 15m streams those aggregated; per-symbol offsets. Warm-up: 300 candles per stream from the feeder's REST. The runtime runs alone in its own process with the production heap cap (160 MB); clients in another; CPU and RSS are the runtime process's.",
      'Candles and signals reach clients batched (`candles` / `signals` frames, one per event-loop turn). p50/p99 "candle close → client": from the moment a minute\'s closing frames are written to the runtime\'s feed socket to their arrival at the slowest of 5 timed clients; the 15m boundary is the burst where all streams close at once.',
    ],
  });
}
