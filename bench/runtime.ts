import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildSync } from 'esbuild';
import WebSocket, { WebSocketServer } from 'ws';
import { mintAccessToken } from '../api/auth';
import { loadCandles } from '../dev/binance-replay/candles';
import { RingBuffer, intervalMs, streamKey, streamName, type Candle } from '../machine-runtime/candles';
import { TraderEngine } from '../machine-runtime/engine';
import { StreamState } from '../machine-runtime/indicators';
import {
  isGroup,
  operandsOf,
  traderDefinitionSchema,
  type Condition,
  type FilterGroup,
  type Operand,
} from '../machine-runtime/trader-schema';
import type { Trader } from '../store/types';
import { envInt, mb, median, percentile, report, round, sleep, type Row } from './lib/report';

const INTERVALS = ['1m', '5m', '15m'] as const;
/** The runtime's V8 flags in production (NODE_OPTIONS in machine-runtime/Dockerfile). */
const RUNTIME_NODE_FLAGS = ['--max-old-space-size=160', '--max-semi-space-size=4'];
const WARMUP = 300;
/** Market time the live replay starts at (a 15-minute boundary); warm-up history lies before it. */
const LIVE_START = Date.parse('2025-01-01T00:00:00Z');
const MINUTE = 60_000;
const now = () => performance.timeOrigin + performance.now();

/** BINANCE_DATA_DIR, default ../shared/data/binance from the repo root: read in place, never copied. */
export const dataDir = resolve(__dirname, '..', process.env.BINANCE_DATA_DIR ?? '../shared/data/binance');
export const haveRecordedData = () => existsSync(dataDir);

/**
 * The recorded market mapped onto N symbols SYM0USDT…: every 1m stream replays BTCUSDT's recorded 1m
 * candles, every 5m stream the 5m file of BTC, ETH or SOL (by symbol number), every 15m stream the
 * same 5m file aggregated to 15m (dev/binance-replay's loader). Each symbol starts at its own offset
 * into its series, so no two symbols move alike; times are re-based so that every stream's candle j
 * opens at LIVE_START + j × interval (j < 0: warm-up history).
 */
export class RecordedMarket {
  private readonly series = new Map<string, { t: number; o: number; h: number; l: number; c: number; v: number }[]>();
  private readonly offsets = new Map<string, number>();
  constructor(
    readonly symbols: string[],
    liveMinutes: number,
  ) {
    const bases = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
    for (const iv of INTERVALS)
      for (const base of iv === '1m' ? ['BTCUSDT'] : bases) {
        const rows = loadCandles(dataDir, base, iv).map((c) => ({
          t: c.openTime,
          o: c.open,
          h: c.high,
          l: c.low,
          c: c.close,
          v: c.volume,
        }));
        this.series.set(`${base}|${iv}`, rows);
      }
    symbols.forEach((symbol, i) => {
      for (const iv of INTERVALS) {
        const rows = this.rows(i, iv);
        const span = WARMUP + Math.ceil(liveMinutes / (intervalMs(iv) / MINUTE)) + 2;
        if (rows.length < span) throw new Error(`recorded ${iv} series too short for ${span} candles`);
        this.offsets.set(`${i}|${iv}`, (i * 7919) % (rows.length - span));
      }
    });
  }
  private rows(i: number, iv: string) {
    const base = iv === '1m' ? 'BTCUSDT' : ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'][i % 3]!;
    return this.series.get(`${base}|${iv}`)!;
  }
  /** Candle j of symbol i on `iv` (j from -WARMUP). */
  candle(i: number, iv: string, j: number): Candle {
    const r = this.rows(i, iv)[this.offsets.get(`${i}|${iv}`)! + WARMUP + j]!;
    const ms = intervalMs(iv);
    const openTime = LIVE_START + j * ms;
    const symbol = this.symbols[i]!;
    return {
      symbol,
      interval: iv,
      openTime,
      closeTime: openTime + ms - 1,
      open: r.o,
      high: r.h,
      low: r.l,
      close: r.c,
      volume: r.v,
    };
  }
  /** The candles that close at the end of live minute `m`, every stream of an interval together. */
  closesAt(m: number): Candle[] {
    const out: Candle[] = [];
    for (const iv of INTERVALS) {
      const per = intervalMs(iv) / MINUTE;
      if ((m + 1) % per !== 0) continue;
      for (let i = 0; i < this.symbols.length; i++) out.push(this.candle(i, iv, (m + 1) / per - 1));
    }
    return out;
  }
  /** Warm-up history in time order (what REST hands the feed before it goes live). */
  history(): Candle[][] {
    const out: Candle[][] = [];
    for (const iv of INTERVALS)
      for (let j = -WARMUP; j < 0; j++) out.push(this.symbols.map((_, i) => this.candle(i, iv, j)));
    return out;
  }
  /** Binance `GET /api/v3/klines` rows for one symbol (only what the feed asks: endTime/startTime/limit). */
  klines(symbol: string, iv: string, q: URLSearchParams, lastJ: number): unknown[][] {
    const i = this.symbols.indexOf(symbol);
    if (i < 0) return [];
    const ms = intervalMs(iv);
    const limit = Math.min(Number(q.get('limit') ?? 500), 1000);
    const end = q.has('endTime') ? Math.min(lastJ, Math.floor((Number(q.get('endTime')) - LIVE_START) / ms)) : lastJ;
    const start = q.has('startTime')
      ? Math.max(-WARMUP, Math.ceil((Number(q.get('startTime')) - LIVE_START) / ms))
      : Math.max(-WARMUP, end - limit + 1);
    const rows: unknown[][] = [];
    for (let j = start; j <= end && rows.length < limit; j++) {
      const c = this.candle(i, iv, j);
      rows.push([c.openTime, fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume), c.closeTime]);
    }
    return rows;
  }
}

const fmt = (n: number) => n.toFixed(8);

/**
 * One combined-stream kline frame, as Binance sends it (`{"stream":…,"data":{"e":"kline",…}}`, prices
 * and volumes as decimal strings). `fraction` < 1: the candle still forming, that far into its time.
 */
function klineFrame(c: Candle, fraction: number): string {
  const x = fraction >= 1;
  const close = x ? c.close : c.open + (c.close - c.open) * fraction;
  const high = x ? c.high : Math.max(c.open, close);
  const low = x ? c.low : Math.min(c.open, close);
  const volume = c.volume * Math.min(1, fraction);
  const eventTime = x ? c.closeTime + 1 : Math.floor(c.openTime + (c.closeTime - c.openTime) * fraction);
  return JSON.stringify({
    stream: streamName(c.symbol, c.interval),
    data: {
      e: 'kline',
      E: eventTime,
      s: c.symbol,
      k: {
        t: c.openTime,
        T: c.closeTime,
        s: c.symbol,
        i: c.interval,
        f: 100,
        L: 200,
        o: fmt(c.open),
        c: fmt(close),
        h: fmt(high),
        l: fmt(low),
        v: fmt(volume),
        n: 101,
        x,
        q: fmt(volume * close),
        V: fmt(volume / 2),
        Q: fmt((volume / 2) * close),
        B: '0',
      },
    },
  });
}

/**
 * The Binance end of the runtime's feed, in this (the benchmark's) process: `GET /api/v3/klines` for
 * the warm-up and `/stream?streams=…` combined streams, both served from the recorded market.
 */
async function startFeeder(market: RecordedMarket, lastJ: () => Record<string, number>) {
  const sockets = new Set<WebSocket>();
  // The feed puts every stream of a connection in the URL (900 names ≈ 20 KB): above Node's default.
  const server: Server = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/v3/klines') return res.writeHead(404).end();
    const iv = url.searchParams.get('interval') ?? '';
    const rows = market.klines(url.searchParams.get('symbol') ?? '', iv, url.searchParams, lastJ()[iv] ?? -1);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rows));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', () => undefined); // (UN)SUBSCRIBE: the set does not change during a run
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `127.0.0.1:${port}`,
    connections: () => sockets.size,
    /** Writes frames to the (single) feed connection; resolves once they are handed to the kernel. */
    send(frames: string[]): Promise<void> {
      const [ws] = sockets;
      if (!ws) throw new Error('the runtime has no feed connection');
      for (const f of frames) ws.send(f);
      return new Promise((r) => {
        const wait = () => (ws.bufferedAmount === 0 ? r() : setTimeout(wait, 1));
        wait();
      });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise((r) => server.close(r));
    },
  };
}

/** 50 users' worth of traders: the usual filter shapes with varied periods, 100 symbols each. */
export function makeTraders(count: number, symbols: string[], userId: string): Trader[] {
  const shapes = (i: number): FilterGroup => {
    const p = 10 + (i % 7);
    switch (i % 5) {
      case 0:
        return { all: [{ left: { indicator: 'rsi', period: p }, op: '<', right: 35 }] };
      case 1:
        return {
          all: [
            { left: { indicator: 'ema', period: p }, op: 'crossesAbove', right: { indicator: 'ema', period: 2 * p } },
          ],
        };
      case 2:
        return {
          all: [
            { left: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'histogram' }, op: '>', right: 0 },
            { left: { indicator: 'price', field: 'close' }, op: '>', right: { indicator: 'sma', period: 5 * p } },
          ],
        };
      case 3:
        return {
          any: [
            {
              left: { indicator: 'price', field: 'close' },
              op: '<',
              right: { indicator: 'bollinger', period: 2 * p, stdDev: 2, output: 'lower' },
            },
            { left: { indicator: 'atr', period: p }, op: '>', right: 2 },
          ],
        };
      default:
        return {
          all: [
            { left: { indicator: 'volumeRatio', period: 2 * p }, op: '>', right: 2 },
            { left: { indicator: 'change', period: 5 }, op: '>', right: 0.5 },
          ],
        };
    }
  };
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    userId,
    name: `trader ${i}`,
    enabled: true,
    updatedAt: new Date(LIVE_START),
    definition: {
      symbols: Array.from({ length: Math.min(100, symbols.length) }, (_, k) => symbols[(i * 37 + k) % symbols.length]!),
      interval: INTERVALS[i % INTERVALS.length],
      filter: shapes(i),
      fireOn: 'change',
    },
  }));
}

// --- the naive baseline: every indicator recomputed from the whole buffer on every candle ----------
function naiveEval(g: FilterGroup, s: StreamState): boolean {
  const test = (n: Condition | FilterGroup): boolean => (isGroup(n) ? naiveEval(n, s) : naiveCond(n, s));
  return 'all' in g ? g.all.every(test) : g.any.some(test);
}
function naiveCond(c: Condition, s: StreamState): boolean {
  const read = (o: Operand | number, which: 0 | 1) => (typeof o === 'number' ? o : s.value(o, which));
  const l = read(c.left, 0);
  const r = read(c.right, 0);
  if (l === null || r === null) return false;
  if (c.op === '>') return l > r;
  if (c.op === '>=') return l >= r;
  if (c.op === '<') return l < r;
  if (c.op === '<=') return l <= r;
  const lp = read(c.left, 1);
  const rp = read(c.right, 1);
  if (lp === null || rp === null) return false;
  return c.op === 'crossesAbove' ? lp <= rp && l > r : lp >= rp && l < r;
}

/** Engine-only candles/s, incremental vs from-scratch, on the same traders and recorded candles, side by side. */
export function compareWithNaive(opts: {
  market: RecordedMarket;
  traders: number;
  minutes: number;
  naiveCandles: number;
}) {
  const { market } = opts;
  const traders = makeTraders(opts.traders, market.symbols, randomUUID());
  const defs = traders.map((t) => ({ t, def: traderDefinitionSchema.parse(t.definition) }));
  let fired = 0;
  const engine = new TraderEngine({ onFire: () => fired++ });
  engine.setTraders(traders);
  const byStream = new Map<string, { buffer: RingBuffer<Candle>; defs: typeof defs; operands: Operand[] }>();
  for (const d of defs)
    for (const s of d.def.symbols) {
      const key = streamKey(s, d.def.interval);
      const e = byStream.get(key) ?? { buffer: new RingBuffer<Candle>(500), defs: [], operands: [] };
      e.defs.push(d);
      e.operands.push(...operandsOf(d.def.filter));
      byStream.set(key, e);
    }
  for (const batch of market.history()) {
    engine.onClosed(batch, false);
    for (const c of batch) byStream.get(streamKey(c.symbol, c.interval))?.buffer.push(c);
  }
  const steps = Array.from({ length: opts.minutes }, (_, m) => market.closesAt(m));
  const total = steps.reduce((a, s) => a + s.length, 0);
  const t0 = performance.now();
  for (const step of steps) engine.onClosed(step, true);
  const incrementalRate = total / ((performance.now() - t0) / 1000);

  const sample = steps
    .flat()
    .filter((c) => byStream.has(streamKey(c.symbol, c.interval)))
    .slice(0, opts.naiveCandles);
  let naiveFired = 0;
  const t1 = performance.now();
  for (const c of sample) {
    const e = byStream.get(streamKey(c.symbol, c.interval))!;
    e.buffer.push(c);
    const state = new StreamState(500);
    state.require(e.operands);
    for (const b of e.buffer.toArray()) state.add(b);
    for (const d of e.defs) if (naiveEval(d.def.filter, state)) naiveFired++;
  }
  const naiveRate = sample.length / ((performance.now() - t1) / 1000);
  return { incrementalRate, naiveRate, ratio: incrementalRate / naiveRate, fired, naiveFired };
}

/** runtime-host.ts bundled the way the Dockerfile bundles machine-runtime/main.ts (packages stay external). */
function bundleHost(): string {
  // Inside node_modules, so the bundle's packages resolve from the repository's node_modules.
  const outfile = resolve(__dirname, '..', 'node_modules', '.cache', 'bench-runtime', `host-${process.pid}.js`);
  buildSync({
    entryPoints: [resolve(__dirname, 'runtime-host.ts')],
    bundle: true,
    platform: 'node',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

function ask<T>(child: ChildProcess, type: string, extra: object = {}): Promise<T> {
  return new Promise<T>((res) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', on);
      res(m as T);
    };
    child.on('message', on);
    if (type !== 'ready') child.send({ type, ...extra });
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * The full path inside one machine, starting at the feed: Binance combined-stream kline frames
 * (recorded data, JSON text as Binance sends it) over a real WebSocket → the runtime's feed (parse,
 * order, exactly-once) → engine (50 traders over shared incremental indicators) → signals (sink,
 * null store) → 100 WebSocket clients on /ws. Three processes: this one plays Binance, the runtime
 * runs alone in runtime-host.ts (so CPU and RSS are its own), the clients in runtime-clients.ts.
 */
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

  const children: ChildProcess[] = [];
  const spawn = (file: string, execArgv: string[], env: Record<string, string> = {}) => {
    const child = fork(file.endsWith('.js') ? file : resolve(__dirname, file), [], {
      execArgv: file.endsWith('.js') ? execArgv : ['--import', 'tsx', ...execArgv],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
    return child;
  };
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
    await until('feed warmed up', async () => {
      const s = await ask<{ warmingUp: number; streams: number }>(host, 'status');
      return feeder.connections() > 0 && s.streams === streams.size && s.warmingUp === 0;
    });
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
    await until('every close evaluated', async () => {
      count = await ask(host, 'count');
      return count.candles - before.candles >= closes;
    });
    const engineDoneS = (performance.now() - t0) / 1000;
    const signals = count.signals - before.signals;
    const perClient = closes + signals;
    let got = { received: 0, frames: 0, closed: 0 };
    await until('everything delivered', async () => {
      got = await ask(clients, 'count');
      return got.received >= perClient * (opts.clients - got.closed);
    });
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
      const step = stepFrames(m, false); // encoded before the clock starts: Binance's encoding is not ours
      const t = now();
      for (const c of step.closes) {
        const key = `${c.symbol}|${c.interval}|${c.openTime}`;
        sentAt.set(key, t);
        if ((m + 1) % 15 === 0) burstKeys.add(key);
      }
      latencyCloses += step.closes.length;
      await feeder.send(step.frames);
      await sleep(opts.stepMs / 2);
      if (k + 1 < latencyMinutes) await feeder.send(stepFrames(m + 1, true).updates);
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
      rows: [
        { figure: 'market minutes replayed (throughput phase)', value: minutes },
        { figure: 'kline frames in (messages)', value: framesIn },
        { figure: 'closed candles among them', value: closes },
        { figure: 'signals fired', value: signals },
        { figure: 'candles + signals delivered to clients', value: got.received },
        { figure: 'WebSocket frames delivered to clients', value: got.frames },
        { figure: 'clients dropped (slow consumer)', value: final.closed },
        { figure: 'wall s (until all delivered)', value: round(wallS, 2) },
        { figure: 'last close evaluated after s', value: round(engineDoneS, 2) },
        { figure: 'runtime CPU s (runtime process)', value: round(cpuS, 2) },
        { figure: 'messages / s per core (runtime CPU)', value: Math.round(perCore) },
        { figure: 'closed candles / s per core (runtime CPU)', value: Math.round(closesPerCore) },
        { figure: 'candle close → client p50 ms (15m boundary: every stream closes)', value: round(median(burst), 2) },
        {
          figure: 'candle close → client p99 ms (15m boundary: every stream closes)',
          value: round(percentile(burst, 99), 2),
        },
        { figure: 'candle close → client p99 ms (every minute step)', value: round(percentile(fromClose, 99), 2) },
        { figure: `runtime CPU ms per burst of ${streams.size} closes (latency phase)`, value: round(burstCpuMs, 1) },
        { figure: 'peak RSS MB (runtime process)', value: mb(mem.peakRss) },
        { figure: 'RSS MB of the process before the runtime was built', value: mb(mem.rssBefore) },
        { figure: `RSS MB after warm-up (${streams.size} streams × ${WARMUP} candles from REST)`, value: mb(warm.rss) },
        { figure: 'heap used MB at the end', value: mb(mem.heapUsed) },
        { figure: 'engine only: incremental candles / s', value: Math.round(naive.incrementalRate) },
        { figure: 'engine only: naive (recompute from scratch) candles / s', value: Math.round(naive.naiveRate) },
        { figure: 'incremental / naive', value: `${round(naive.ratio, 0)}×` },
      ] as Row[],
      perCore,
      closesPerCore,
      p99: percentile(burst, 99),
      burstCpuMs,
      peakRssMb: mb(mem.peakRss),
      ratio: naive.ratio,
      delivered: got.received,
    };
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise((r) => {
            if (child.exitCode !== null) return r(undefined);
            child.once('exit', r);
            child.send({ type: child === children[0] ? 'stop' : 'close' });
            setTimeout(() => child.kill(), 5_000).unref();
          }),
      ),
    );
    await feeder.close();
  }
}

async function main() {
  const startLoad = os.loadavg();
  if (!haveRecordedData()) throw new Error(`the runtime benchmark replays recorded data: ${dataDir} does not exist`);
  const symbols = envInt('BENCH_SYMBOLS', 300);
  const traders = envInt('BENCH_TRADERS', 50);
  const clients = envInt('BENCH_CLIENTS', 100);
  const updates = envInt('BENCH_UPDATES', 2);
  const r = await runRuntime({
    symbols,
    traders,
    clients,
    minutes: envInt('BENCH_MINUTES', 60),
    updates,
    latencyBursts: envInt('BENCH_LATENCY_ROUNDS', 5),
    stepMs: envInt('BENCH_STEP_MS', 250),
    naiveCandles: envInt('BENCH_NAIVE_CANDLES', 300),
  });
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

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
