import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { startMachineRuntime } from '../machine-runtime/app';
import type { NewTradeSignal, TradeSignalRow, Trader, UserStore } from '../store/types';

/**
 * The runtime benchmark's machine: the real runtime (`startMachineRuntime`: feed, engine, sink, /ws) in a
 * process of its own, started with the production heap cap (`--max-old-space-size=160`, see
 * machine-runtime/Dockerfile), so its CPU time and RSS are the runtime's alone: the feed's far end
 * (the benchmark process) and the browsers (runtime-clients.ts) live elsewhere.
 * Everything it needs comes from the parent over IPC; it answers `cpu`, `count` and `memory`.
 */

const now = () => performance.timeOrigin + performance.now();

/**
 * Stores nothing: the runtime's store is Postgres behind the network, not what this measures. A
 * signal counts as stored when the sink's `insertTradeSignal` reaches it (after the engine, the sink's
 * note and browser queue, in the sink's store order); while tracing, each one's time is noted.
 */
class NullStore implements UserStore {
  /** `SYMBOL|interval|openTime` and epoch ms, while tracing. */
  stored: [string, number][] | undefined;
  count = 0;
  constructor(
    readonly userId: string,
    private readonly traders: Trader[],
  ) {}
  async listTraders() {
    return this.traders;
  }
  async insertTradeSignal(s: NewTradeSignal) {
    this.count++;
    this.stored?.push([`${s.symbol}|${s.interval}|${s.candleOpenAt.getTime()}`, now()]);
    const row = { id: randomUUID(), userId: this.userId, firedAt: new Date(), ...s } as TradeSignalRow;
    return { inserted: true, signal: row };
  }
  async listTradeSignals() {
    return [];
  }
  async getMachine() {
    return null;
  }
  async getRuntimeCheckpoint() {
    return null;
  }
  async putRuntimeCheckpoint() {}
}

interface Init {
  type: 'init';
  userId: string;
  token: string;
  wsUrl: string;
  restUrl: string;
  /** Market time the runtime believes it is (the live replay starts here). */
  marketNow: number;
  traders: (Omit<Trader, 'updatedAt'> & { updatedAt: string })[];
}

async function main() {
  const init = await new Promise<Init>((res) => process.once('message', (m) => res(m as Init)));
  const traders: Trader[] = init.traders.map((t) => ({ ...t, updatedAt: new Date(t.updatedAt) }));
  // Peak RSS is the kernel's high-water mark (getrusage): no sampler charged to the runtime's CPU.
  const rssBefore = process.memoryUsage().rss;
  const store = new NullStore(init.userId, traders);
  const rt = await startMachineRuntime({
    config: { userId: init.userId, userToken: init.token, binanceWsUrl: init.wsUrl, binanceRestUrl: init.restUrl },
    store,
    log: pino({ level: 'silent' }),
    clock: () => init.marketNow,
    verifyToken: async () => ({ ok: true, expiresAt: Date.now() + 3600_000 }),
    // "50 users' worth" on one runtime (9,034 instances over 900 streams): far past one machine's budget.
    options: { traderLimits: { maxIndicatorInstances: 20_000, maxCompiledConditions: 1_000_000 } },
  });
  await rt.app.listen({ port: 0, host: '127.0.0.1' });
  await rt.start();
  const port = (rt.app.server.address() as AddressInfo).port;

  let cpuFrom = process.cpuUsage();
  // BENCH_PROFILE=<dir>: a CPU profile of the measured phase only (cpu-start → cpu), for DevTools.
  const profileDir = process.env.BENCH_PROFILE;
  const inspector = profileDir ? new Session() : undefined;
  inspector?.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((res, rej) => inspector!.post(method, params, (err, r) => (err ? rej(err) : res(r))));
  // Tracing (the budget run): every 10 ms, when it moved, the frames read and closes evaluated so far.
  let trace: { samples: [number, number, number][]; timer: NodeJS.Timeout } | undefined;
  const sample = () => {
    const last = trace!.samples[trace!.samples.length - 1];
    const frames = rt.feed.status().messages;
    if (!last || last[1] !== frames) trace!.samples.push([now(), frames, rt.engine.stats.candles]);
  };
  process.on('message', (m: { type: string }) => {
    const send = (x: object) => process.send?.({ type: m.type, ...x });
    if (m.type === 'trace-start') {
      store.stored = [];
      trace = { samples: [], timer: setInterval(sample, 10) };
      send({});
    }
    if (m.type === 'trace') {
      if (trace) sample();
      send({ samples: trace?.samples ?? [], stored: store.stored ?? [] });
      if (trace) trace.samples = [];
      if (store.stored) store.stored = [];
    }
    if (m.type === 'status') send({ warmingUp: rt.feed.status().warmingUp, streams: rt.feed.status().streams });
    if (m.type === 'cpu-start') {
      // BENCH_PROFILE_US: the sampling interval (V8's default, 1000 µs, is coarse for a 10 ms burst).
      const interval = Number(process.env.BENCH_PROFILE_US ?? 0);
      const begin = () =>
        post('Profiler.enable')
          .then(() => (interval > 0 ? post('Profiler.setSamplingInterval', { interval }) : undefined))
          .then(() => post('Profiler.start'));
      void (inspector ? begin() : Promise.resolve()).then(() => {
        cpuFrom = process.cpuUsage();
        send({});
      });
    }
    if (m.type === 'cpu') {
      const u = process.cpuUsage(cpuFrom);
      void (inspector ? post('Profiler.stop') : Promise.resolve()).then((r) => {
        if (r)
          writeFileSync(
            `${profileDir}/runtime-${Date.now()}.cpuprofile`,
            JSON.stringify((r as { profile: unknown }).profile),
          );
        send({ cpuS: (u.user + u.system) / 1e6 });
      });
    }
    if (m.type === 'count') {
      const s = rt.feed.status();
      send({
        frames: s.messages,
        malformed: s.malformed,
        duplicates: s.duplicates,
        reconnects: s.reconnects,
        stored: store.count,
        queued: rt.sink.queued,
        candles: rt.engine.stats.candles,
        signals: rt.engine.stats.firings,
      });
    }
    if (m.type === 'memory') {
      const mem = process.memoryUsage();
      send({
        peakRss: process.resourceUsage().maxRSS * 1024,
        rssBefore,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        external: mem.external + mem.arrayBuffers,
      });
    }
    if (m.type === 'stop') {
      clearInterval(trace?.timer);
      void rt.stop().finally(() => {
        send({});
        setTimeout(() => process.exit(0), 50);
      });
    }
  });
  process.send?.({ type: 'ready', port });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
