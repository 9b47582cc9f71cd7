import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
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

/** Stores nothing: the runtime's store is Postgres behind the network, not what this measures. */
class NullStore implements UserStore {
  constructor(
    readonly userId: string,
    private readonly traders: Trader[],
  ) {}
  async listTraders() {
    return this.traders;
  }
  async insertTradeSignal(s: NewTradeSignal) {
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
  let peakRss = process.memoryUsage().rss;
  // rss() alone: memoryUsage() also walks the heap spaces, which would be charged to the runtime.
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  sampler.unref();
  const rssBefore = process.memoryUsage().rss;
  const rt = await startMachineRuntime({
    config: { userId: init.userId, userToken: init.token, binanceWsUrl: init.wsUrl, binanceRestUrl: init.restUrl },
    store: new NullStore(init.userId, traders),
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
  const post = (method: string) =>
    new Promise<unknown>((res, rej) => inspector!.post(method, (err, r) => (err ? rej(err) : res(r))));
  process.on('message', (m: { type: string }) => {
    const send = (x: object) => process.send?.({ type: m.type, ...x });
    if (m.type === 'status') send({ warmingUp: rt.feed.status().warmingUp, streams: rt.feed.status().streams });
    if (m.type === 'cpu-start') {
      void (inspector ? post('Profiler.enable').then(() => post('Profiler.start')) : Promise.resolve()).then(() => {
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
        candles: rt.engine.stats.candles,
        signals: rt.engine.stats.firings,
      });
    }
    if (m.type === 'memory') {
      const mem = process.memoryUsage();
      send({
        peakRss: Math.max(peakRss, process.resourceUsage().maxRSS * 1024),
        rssBefore,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        external: mem.external + mem.arrayBuffers,
      });
    }
    if (m.type === 'stop') {
      clearInterval(sampler);
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
