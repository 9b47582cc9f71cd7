import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { mintAccessToken } from '../api/auth';
import { streamKey, type Candle } from '../machine-runtime/candles';
import { envInt, mb, percentile } from './lib/report';
import { sleep } from '../test/kit/wait';
import { compareWithNaive } from './runtime-baseline';
import { RUNTIME_NODE_FLAGS, ask, bundleHost, childProcesses } from './runtime-ipc';
import { until } from '../test/kit/wait';
import { INTERVALS, LIVE_START, RecordedMarket, klineFrame, startFeeder, wsTextFrames } from './runtime-market';
import { runBudget } from './runtime-budget';
import { cgroupV1Mounts } from './runtime-cgroup';
import { reportRuntime, runtimeRows } from './runtime-report';
import { haveRecordedData, recordedDataDir } from '../test/kit/data';
import { makeTraders } from './runtime-traders';

const now = () => performance.timeOrigin + performance.now();

/**
 * The full path inside one machine, starting at the feed: Binance combined-stream kline frames
 * (recorded data, JSON text as Binance sends it) over a real WebSocket → the runtime's feed (parse,
 * order, exactly-once) → engine (50 traders over shared incremental indicators) → signals (sink,
 * null store) → 100 WebSocket clients on /ws. Three processes: this one plays Binance, the runtime
 * runs alone in runtime-host.ts (so CPU and RSS are its own), the clients in runtime-clients.ts.
 */
/** How the benchmark waits: every 5 ms (latency is measured around these waits), for up to 2 minutes. */
const POLL = { timeoutMs: 120_000, everyMs: 5 };

export async function runRuntime(opts: {
  symbols: number;
  traders: number;
  clients: number;
  /** Market minutes replayed back to back for throughput (rounded up to whole 15-minute blocks). */
  minutes: number;
  /** In-progress kline frames per candle before its closing one (dev/binance-replay's default is 2). */
  updates: number;
  /** 15-minute boundaries (900 closes at once) in the paced latency phase. */
  latencyBursts: number;
  /** Real ms between market minutes in the latency phase. */
  stepMs: number;
  naiveCandles: number;
}) {
  const userId = randomUUID();
  const symbols = Array.from({ length: opts.symbols }, (_, i) => `SYM${i}USDT`);
  const traders = makeTraders(opts.traders, symbols, userId);
  const minutes = Math.max(15, Math.ceil(opts.minutes / 15) * 15);
  const latencyMinutes = opts.latencyBursts * 15;
  const market = new RecordedMarket(symbols, minutes + latencyMinutes);
  // REST serves only what has closed: history before the live replay starts.
  const lastJ = () => Object.fromEntries(INTERVALS.map((iv) => [iv, -1]));
  const feeder = await startFeeder(market, lastJ);
  const secret = 'bench-runtime-secret-0123456789abcdef';
  const token = await mintAccessToken({ jwtSecret: secret, userId, ttlSeconds: 3600 });

  const children = childProcesses();
  const spawn = children.spawn;
  try {
    // As in production (machine-runtime/Dockerfile): bundled by esbuild, plain node, the same heap cap.
    const bundle = bundleHost();
    const host = spawn(bundle, [
      ...RUNTIME_NODE_FLAGS,
      ...(process.env.BENCH_HOST_FLAGS ?? '').split(' ').filter(Boolean),
    ]);
    host.once('exit', () => rmSync(bundle, { force: true }));
    const hostReady = ask<{ port: number }>(host, 'ready');
    host.send({
      type: 'init',
      userId,
      token,
      wsUrl: `ws://${feeder.url}`,
      restUrl: `http://${feeder.url}`,
      marketNow: LIVE_START,
      traders: traders.map((t) => ({ ...t, updatedAt: t.updatedAt.toISOString() })),
    });
    const { port } = await hostReady;
    const streams = new Set(
      traders.flatMap((t) => {
        const def = t.definition as { symbols: string[]; interval: string };
        return def.symbols.map((s) => streamKey(s, def.interval));
      }),
    );
    await until(
      'feed warmed up',
      async () => {
        const s = await ask<{ warmingUp: number; streams: number }>(host, 'status');
        return feeder.connections() > 0 && s.streams === streams.size && s.warmingUp === 0;
      },
      POLL,
    );
    const warm = await ask<{ rss: number }>(host, 'memory');
    const clients = spawn('runtime-clients.ts', [], {
      BENCH_WS_URL: `ws://127.0.0.1:${port}/ws`,
      BENCH_TOKEN: token,
      BENCH_CLIENTS: String(opts.clients),
    });
    await ask(clients, 'ready');
    await ask(clients, 'reset');

    // Only frames of followed streams: a Binance connection carries only what was subscribed.
    const followed = (c: Candle) => streams.has(streamKey(c.symbol, c.interval));
    const stepFrames = (m: number, withUpdates: boolean) => {
      const closes = market.closesAt(m).filter(followed);
      const updates: string[] = [];
      if (withUpdates)
        for (let u = 1; u <= opts.updates; u++)
          for (const c of closes) updates.push(klineFrame(c, u / (opts.updates + 1)));
      return { closes, updates, frames: [...updates, ...closes.map((c) => klineFrame(c, 1))] };
    };

    // Throughput: the recorded minutes back to back, as fast as the runtime takes them.
    const encoded = Array.from({ length: minutes }, (_, m) => stepFrames(m, true));
    const frames = encoded.flatMap((s) => s.frames);
    const closes = encoded.reduce((a, s) => a + s.closes.length, 0);
    const before = await ask<{ frames: number; candles: number; signals: number }>(host, 'count');
    await ask(host, 'cpu-start');
    const t0 = performance.now();
    await feeder.send(frames);
    let count = before;
    await until(
      'every close evaluated',
      async () => {
        count = await ask(host, 'count');
        return count.candles - before.candles >= closes;
      },
      POLL,
    );
    const engineDoneS = (performance.now() - t0) / 1000;
    const signals = count.signals - before.signals;
    const perClient = closes + signals;
    let got = { received: 0, frames: 0, closed: 0 };
    await until(
      'everything delivered',
      async () => {
        got = await ask(clients, 'count');
        return got.received >= perClient * (opts.clients - got.closed);
      },
      POLL,
    );
    const wallS = (performance.now() - t0) / 1000;
    const { cpuS } = await ask<{ cpuS: number }>(host, 'cpu');
    const framesIn = count.frames - before.frames;

    // Latency: minute by minute, paced; each step's closes leave together (the boundary's burst),
    // the next step's in-progress frames half a step later.
    clients.send({ type: 'record' });
    await ask(host, 'cpu-start');
    let latencyCloses = 0;
    const sentAt = new Map<string, number>();
    const burstKeys = new Set<string>();
    for (let k = 0; k < latencyMinutes; k++) {
      const m = minutes + k;
      // Encoded and framed before the clock starts (Binance's encoding is not ours), written in one go.
      const step = stepFrames(m, false);
      const bytes = wsTextFrames(step.frames);
      const t = now();
      for (const c of step.closes) {
        const key = `${c.symbol}|${c.interval}|${c.openTime}`;
        sentAt.set(key, t);
        if ((m + 1) % 15 === 0) burstKeys.add(key);
      }
      latencyCloses += step.closes.length;
      await feeder.write(bytes);
      await sleep(opts.stepMs / 2);
      if (k + 1 < latencyMinutes) await feeder.write(wsTextFrames(stepFrames(m + 1, true).updates));
      await sleep(opts.stepMs / 2);
    }
    await sleep(300);
    // Runtime CPU per closed candle when they come minute by minute (no in-progress frames counted
    // apart): × the streams is the CPU one boundary burst costs, the floor of its p99 on a free core.
    const latencyCpu = await ask<{ cpuS: number }>(host, 'cpu');
    const burstCpuMs = (latencyCpu.cpuS / latencyCloses) * streams.size * 1000;
    const { arrivals } = await ask<{ arrivals: [string, number][] }>(clients, 'arrivals');
    const fromClose = arrivals.map(([key, t]) => t - sentAt.get(key)!);
    const fromBurst = arrivals.filter(([key]) => burstKeys.has(key)).map(([key, t]) => t - sentAt.get(key)!);
    const final = await ask<{ received: number; closed: number }>(clients, 'count');
    const mem = await ask<{ peakRss: number; rssBefore: number; heapUsed: number; external: number }>(host, 'memory');

    const naive = compareWithNaive({
      market,
      traders: opts.traders,
      minutes: Math.min(minutes, 15),
      naiveCandles: opts.naiveCandles,
    });
    const perCore = framesIn / cpuS;
    const closesPerCore = closes / cpuS;
    const burst = fromBurst.length ? fromBurst : fromClose;
    return {
      rows: runtimeRows({
        minutes,
        framesIn,
        closes,
        signals,
        got,
        dropped: final.closed,
        wallS,
        engineDoneS,
        cpuS,
        perCore,
        closesPerCore,
        burst,
        fromClose,
        burstCpuMs,
        streams: streams.size,
        warmRss: warm.rss,
        mem,
        naive,
      }),
      perCore,
      closesPerCore,
      p99: percentile(burst, 99),
      burstCpuMs,
      peakRssMb: mb(mem.peakRss),
      ratio: naive.ratio,
      delivered: got.received,
    };
  } finally {
    await children.stopAll();
    await feeder.close();
  }
}

const envFloat = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!(v > 0)) throw new Error(`${name} must be a positive number, got "${process.env[name]}"`);
  return v;
};

/**
 * `npm run bench:runtime`: the whole-core run; `BENCH_RUNTIME_BUDGET=1` adds the budget run
 * (runtime-budget.ts: root and cgroup v1 needed), `=only` runs that alone; `BENCH_REPEAT` runs each
 * that many times (side by side, medians), all in one report entry.
 */
async function main() {
  const startLoad = os.loadavg();
  if (!haveRecordedData)
    throw new Error(`the runtime benchmark replays recorded data: ${recordedDataDir} does not exist`);
  const mode = process.env.BENCH_RUNTIME_BUDGET ?? '';
  if (!['', '0', '1', 'only'].includes(mode)) throw new Error('BENCH_RUNTIME_BUDGET must be 1 or only');
  // Before anything is built: a machine that cannot run it says so at once.
  if (mode === '1' || mode === 'only') cgroupV1Mounts();
  const repeat = envInt('BENCH_REPEAT', 1);
  const symbols = envInt('BENCH_SYMBOLS', 300);
  const traders = envInt('BENCH_TRADERS', 50);
  const clients = envInt('BENCH_CLIENTS', 100);
  const updates = envInt('BENCH_UPDATES', 2);
  const whole = [];
  for (let r = 0; r < (mode === 'only' ? 0 : repeat); r++)
    whole.push(
      await runRuntime({
        symbols,
        traders,
        clients,
        minutes: envInt('BENCH_MINUTES', 60),
        updates,
        latencyBursts: envInt('BENCH_LATENCY_ROUNDS', 5),
        stepMs: envInt('BENCH_STEP_MS', 250),
        naiveCandles: envInt('BENCH_NAIVE_CANDLES', 300),
      }),
    );
  const budget = [];
  for (let r = 0; r < (mode === '1' || mode === 'only' ? repeat : 0); r++)
    budget.push(
      await runBudget({
        symbols,
        traders,
        clients: envInt('BENCH_BUDGET_CLIENTS', 10),
        cpuFraction: envFloat('BENCH_CPU_FRACTION', 1 / 16),
        periodUs: envInt('BENCH_CPU_PERIOD_US', 100_000),
        memoryMb: envInt('BENCH_MEMORY_MB', 256),
        minutes: envInt('BENCH_BUDGET_MINUTES', 30),
        minuteMs: envFloat('BENCH_BUDGET_MINUTE_S', 10) * 1000,
        updateMs: envInt('BENCH_BUDGET_UPDATE_MS', 2000),
        tickMs: envInt('BENCH_BUDGET_TICK_MS', 100),
      }),
    );
  // Every boundary's latencies and the rest, for a closer look (BENCH_BUDGET_JSON=<file>).
  if (process.env.BENCH_BUDGET_JSON) writeFileSync(process.env.BENCH_BUDGET_JSON, JSON.stringify(budget));
  reportRuntime(whole, budget, {
    symbols,
    traders,
    clients: whole.length > 0 ? clients : envInt('BENCH_BUDGET_CLIENTS', 10),
    updates,
    startLoad,
    label: process.env.BENCH_LABEL,
  });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
