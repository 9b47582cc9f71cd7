import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { DataIndex, resolveDataDir } from './candles';
import { createReplayClock } from './clock';
import { createConnections } from './connections';
import { createControlHandler } from './control';
import { createTimelines, type LapPlan } from './laps';
import { createRestHandler } from './rest';

/**
 * binance-replay: the composition. The replay clock and event pump (clock.ts), the WebSocket connections and
 * their faults (connections.ts), control messages (control.ts), REST and admin (rest.ts), on one port.
 */

export interface ReplayFaults {
  dropEvery?: number;
  stallMs?: number;
  stallEvery?: number;
  malformedEvery?: number;
  serverShutdownAfterMs?: number;
}

export interface ReplayOptions {
  dataDir: string; // folder of recorded CSVs (SYMBOL-INTERVAL-*.csv)
  port?: number; // 0 = free port
  speed?: number; // replay speed: candles of 1m per real second multiplier; 0 or Infinity = as fast as possible
  updatesPerCandle?: number; // in-progress kline updates sent before each close (default 2)
  startTime?: number; // ms epoch where the replay clock starts (default: first candle of the data)
  faults?: ReplayFaults;
  symbols?: string[]; // restrict what is loaded (default all files found)
  /** When a stream's recording ends, play it again, shifted by whole laps (laps.ts). Default false; the CLI: true. */
  loop?: boolean;
  /** Additions to the shared interface, for tests and containers. */
  host?: string; // default 127.0.0.1
  pingIntervalMs?: number; // default 20 s, as Binance
  pongTimeoutMs?: number; // default 60 s, as Binance
  maxConnectionMs?: number; // default 24 h, as Binance
}

export interface BinanceReplay {
  wsUrl: string;
  restUrl: string;
  clock(): number;
  setFaults(f: ReplayFaults): void;
  dropAll(): void;
  stats(): { connections: number; messagesSent: number; closedCandlesSent: number };
  /** A symbol's laps in loop mode (undefined when not looping, or too little is recorded to loop). */
  laps(symbol: string): LapPlan | undefined;
  close(): Promise<void>;
}

const positiveInt = z.number().int().positive();
export const faultsSchema = z
  .object({
    dropEvery: positiveInt.optional(),
    stallMs: positiveInt.optional(),
    stallEvery: positiveInt.optional(),
    malformedEvery: positiveInt.optional(),
    serverShutdownAfterMs: z.number().int().min(0).optional(),
  })
  .strict();

/** Starts the replay: HTTP (REST + admin) and WebSocket on one port. */
export async function createBinanceReplay(opts: ReplayOptions): Promise<BinanceReplay> {
  const index = new DataIndex(resolveDataDir(opts.dataDir), opts.symbols);
  const timelines = createTimelines(index, opts.loop ?? false);
  const host = opts.host ?? '127.0.0.1';
  let closed = false;

  const connections = createConnections({
    pingIntervalMs: opts.pingIntervalMs ?? 20_000,
    pongTimeoutMs: opts.pongTimeoutMs ?? 60_000,
    maxConnectionMs: opts.maxConnectionMs ?? 24 * 3600_000,
    faultsSchema,
    // Both are only called from timers, once the clock below exists.
    clockMs: () => clock.rawMs(),
    onStallEnd: () => clock.schedulePump(),
  });
  const clock = createReplayClock({
    index,
    timelines,
    speed: opts.speed,
    updatesPerCandle: opts.updatesPerCandle,
    startTime: opts.startTime,
    conns: connections.conns,
    deliver: connections.deliver,
  });
  const onControl = createControlHandler({
    reply: connections.reply,
    replyError: connections.replyError,
    subscribe: clock.subscribe,
    unsubscribe: clock.unsubscribe,
  });
  const handle = createRestHandler({
    index,
    timelines,
    clock: clock.now,
    faults: connections.faults,
    faultsSchema,
    setFaults: connections.setFaults,
    stats: connections.stats,
    dropAll: connections.dropAll,
  });

  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((req, res) => void handle(req, res));
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://replay');
    if (
      !/^\/(stream|ws)(\/|$)/.test(url.pathname) ||
      (url.pathname.startsWith('/stream') && url.pathname !== '/stream')
    ) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) =>
      connections.open(ws, url, { subscribe: clock.subscribe, unsubscribe: clock.unsubscribe, onControl }),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  if (opts.faults) connections.setFaults(opts.faults);

  return {
    wsUrl: `ws://${shownHost}:${port}`,
    restUrl: `http://${shownHost}:${port}`,
    clock: clock.now,
    setFaults: connections.setFaults,
    dropAll: connections.dropAll,
    stats: connections.stats,
    laps: timelines.plan,
    close: async () => {
      if (closed) return;
      closed = true;
      clock.close();
      connections.close();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
