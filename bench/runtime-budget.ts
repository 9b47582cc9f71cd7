import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { mintAccessToken } from '../api/auth';
import { streamKey } from '../machine-runtime/candles';
import { until } from '../test/kit/wait';
import { createCgroup, forkInto } from './runtime-cgroup';
import { playLiveMarket, type Boundary } from './runtime-clock';
import { RUNTIME_NODE_FLAGS, ask, bundleHost, childProcesses } from './runtime-ipc';
import { LIVE_START, RecordedMarket, startFeeder } from './runtime-market';
import { makeTraders } from './runtime-traders';

/**
 * The runtime on a Fly shared-cpu-1x budget: the same bundled runtime as the whole-core run, started
 * inside a cgroup v1 with 1/16 of a core (cpu.cfs_quota_us / cpu.cfs_period_us) and 256 MB it cannot
 * swap past, from its first instruction (start, warm-up and all), fed at Binance's live rate by
 * runtime-clock.ts, with 10 browsers (outside the cgroup, like the feeder). Measures, per boundary,
 * candle close → signal stored and → browser, how long until the runtime is caught up again, and
 * over the run the throttling, memory and OOM state the kernel reports.
 */
export interface BudgetOptions {
  symbols: number;
  traders: number;
  clients: number;
  cpuFraction: number;
  periodUs: number;
  memoryMb: number;
  minutes: number;
  minuteMs: number;
  updateMs: number;
  tickMs: number;
}

const now = () => performance.timeOrigin + performance.now();
type Stat = Boundary['cpuStat'];

export async function runBudget(o: BudgetOptions) {
  const userId = randomUUID();
  const symbols = Array.from({ length: o.symbols }, (_, i) => `SYM${i}USDT`);
  const traders = makeTraders(o.traders, symbols, userId);
  const market = new RecordedMarket(symbols, o.minutes + 2);
  const feeder = await startFeeder(market, () => ({ '1m': -1, '5m': -1, '15m': -1 }));
  const secret = 'bench-runtime-secret-0123456789abcdef';
  const token = await mintAccessToken({ jwtSecret: secret, userId, ttlSeconds: 3600 });
  const cg = createCgroup(`bench-runtime-${process.pid}-${Date.now()}`, {
    cpuFraction: o.cpuFraction,
    periodUs: o.periodUs,
    memoryBytes: o.memoryMb * 1024 * 1024,
  });
  const children = childProcesses();
  let exit: { code: number | null; signal: string | null } | undefined;
  try {
    const bundle = bundleHost();
    const into = forkInto(cg, RUNTIME_NODE_FLAGS);
    const started = now();
    const host = children.spawn(bundle, into.execArgv, {}, into.execPath);
    host.once('exit', (code, signal) => {
      exit = { code, signal };
      rmSync(bundle, { force: true });
    });
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
    const streams = [
      ...new Set(
        traders.flatMap((t) => {
          const def = t.definition as { symbols: string[]; interval: string };
          return def.symbols.map((s) => streamKey(s, def.interval));
        }),
      ),
    ];
    const slow = { timeoutMs: 20 * 60_000, everyMs: 500 };
    await until(
      'feed warmed up (under the budget)',
      async () => {
        const s = await ask<{ warmingUp: number; streams: number }>(host, 'status');
        return feeder.connections() > 0 && s.streams === streams.length && s.warmingUp === 0;
      },
      slow,
    );
    const warmupS = (now() - started) / 1000;
    const warmStat = cg.cpuStat();
    const clients = children.spawn('runtime-clients.ts', [], {
      BENCH_WS_URL: `ws://127.0.0.1:${port}/ws`,
      BENCH_TOKEN: token,
      BENCH_CLIENTS: String(o.clients),
      BENCH_TIMED_CLIENTS: String(o.clients),
    });
    await ask(clients, 'ready');
    clients.send({ type: 'record' });
    await ask(host, 'trace-start');
    await ask(host, 'cpu-start');
    const before = await ask<{ frames: number; candles: number; stored: number }>(host, 'count');
    const liveStat = cg.cpuStat();

    const played = await playLiveMarket(
      market,
      feeder,
      streams,
      { minutes: o.minutes, minuteMs: o.minuteMs, updateMs: o.updateMs, tickMs: o.tickMs, tailMs: o.minuteMs },
      cg.cpuStat,
    );
    const endStat = cg.cpuStat();
    // Everything sent read (or give up after a minute: the rest counts as dropped). A runtime that
    // died (OOM) answers nothing: its figures stay empty and the run says how it ended.
    let count = before;
    let cpu = { cpuS: NaN };
    let trace: { samples: [number, number, number][]; stored: [string, number][] } = { samples: [], stored: [] };
    let mem = { peakRss: NaN, heapUsed: NaN };
    try {
      await until(
        'the runtime caught up after the last frame',
        async () => {
          count = await ask(host, 'count');
          return count.frames - before.frames >= played.frames;
        },
        { timeoutMs: 60_000, everyMs: 250 },
      ).catch((err: Error) => {
        if (exit) throw err;
      });
      cpu = await ask(host, 'cpu');
      trace = await ask(host, 'trace');
      mem = await ask(host, 'memory');
    } catch (err) {
      console.error(`[budget] the runtime stopped answering: ${(err as Error).message}`);
    }
    const { arrivals } = await ask<{ arrivals: [string, number][] }>(clients, 'arrivals');
    await children.stopAll();
    return analyse({
      o,
      played,
      before,
      count,
      trace,
      arrivals,
      cpuS: cpu.cpuS,
      warmupS,
      stats: { warmStat, liveStat, endStat },
      mem,
      cgMemory: cg.memory(),
      exit,
      quota: { quotaUs: cg.quotaUs, periodUs: cg.periodUs, memsw: cg.memsw },
    });
  } finally {
    await children.stopAll();
    await feeder.close();
    cg.remove();
  }
}

const delta = (a: Stat, b: Stat): Stat => ({
  periods: b.periods - a.periods,
  throttled: b.throttled - a.throttled,
  throttledNs: b.throttledNs - a.throttledNs,
});

/** Per boundary and over the run, from what the feeder sent, the host traced and the kernel counted. */
function analyse(r: {
  o: BudgetOptions;
  played: Awaited<ReturnType<typeof playLiveMarket>>;
  before: { frames: number; candles: number; stored: number };
  count: { frames: number; candles: number; stored: number; malformed?: number; reconnects?: number };
  trace: { samples: [number, number, number][]; stored: [string, number][] };
  arrivals: [string, number][];
  cpuS: number;
  warmupS: number;
  stats: { warmStat: Stat; liveStat: Stat; endStat: Stat };
  mem: { peakRss: number; heapUsed: number };
  cgMemory: ReturnType<ReturnType<typeof createCgroup>['memory']>;
  exit: { code: number | null; signal: string | null } | undefined;
  quota: { quotaUs: number; periodUs: number; memsw: boolean };
}) {
  const { played, trace } = r;
  // Frames are counted from the live phase's start on, as the feeder's writes are.
  const samples = trace.samples.map(([t, frames]) => [t, frames - r.before.frames] as const);
  const stored = new Map(trace.stored);
  const arrived = new Map(r.arrivals);
  /** Frames written up to `t` (the last write at or before it; writes are in time order). */
  const sentBy = (t: number) => {
    let lo = 0;
    let hi = played.writes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (played.writes[mid]![0] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : played.writes[lo - 1]![1];
  };
  const boundaries = played.boundaries.map((b, k) => {
    const next = played.boundaries[k + 1];
    const burst = sentBy(b.at);
    // Caught up: the burst read, and nothing written more than one tick earlier still unread.
    const caught = samples.find(([t, f]) => t >= b.at && f >= burst && f >= sentBy(t - r.o.tickMs));
    const toStored = b.keys.filter((key) => stored.has(key)).map((key) => stored.get(key)! - b.at);
    const toClient = b.keys.filter((key) => arrived.has(key)).map((key) => arrived.get(key)! - b.at);
    const windowEnd = next?.cpuStat ?? r.stats.endStat;
    return {
      minute: b.minute,
      kind: b.kind,
      closes: b.keys.length,
      toStored,
      toClient,
      recoveryMs: caught ? caught[0] - b.at : undefined,
      recoveredBeforeNext: caught !== undefined && (next === undefined || caught[0] <= next.at),
      window: delta(b.cpuStat, windowEnd),
    };
  });
  // Per write, how long until the runtime had read it (samples and writes both in time order).
  let lateFrames = 0;
  let maxLagMs = 0;
  let prev = 0;
  let j = 0;
  for (const [at, cum] of played.writes) {
    while (j < samples.length && (samples[j]![0] < at || samples[j]![1] < cum)) j++;
    const lag = j < samples.length ? samples[j]![0] - at : Infinity;
    if (lag > 1000) lateFrames += cum - prev;
    if (Number.isFinite(lag)) maxLagMs = Math.max(maxLagMs, lag);
    prev = cum;
  }
  const framesRead = r.count.frames - r.before.frames;
  const live = delta(r.stats.liveStat, r.stats.endStat);
  const liveS = (played.end - played.t0) / 1000;
  const oomKilled = (r.cgMemory.oomKills ?? 0) > 0 || r.exit?.signal === 'SIGKILL';
  return {
    o: r.o,
    quota: r.quota,
    warmupS: r.warmupS,
    warm: r.stats.warmStat,
    liveS,
    framesSent: played.frames,
    framesRead,
    dropped: Math.max(0, played.frames - framesRead),
    malformed: r.count.malformed ?? 0,
    reconnects: r.count.reconnects ?? 0,
    closesEvaluated: r.count.candles - r.before.candles,
    signalsStored: r.count.stored - r.before.stored,
    lateFrames,
    maxLagMs,
    maxQueuedBytes: played.maxQueued,
    cpuS: r.cpuS,
    cores: r.cpuS / liveS,
    live,
    boundaries,
    peakRss: r.mem.peakRss,
    cgMemory: r.cgMemory,
    exit: r.exit,
    oomKilled,
  };
}

export type BudgetRun = Awaited<ReturnType<typeof runBudget>>;
