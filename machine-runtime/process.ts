import { ConfigError } from '../common/config';
import { openUserStore } from '../store/user-store';
import type { UserStore } from '../store/types';
import { startMachineRuntime, type MachineRuntime } from './app';
import { loadConfig } from './config';
import { createRuntimeLogger } from './log';
import { createMetrics } from './metrics';

/**
 * The process: config, store, listen, graceful shutdown. An unreachable store or feed never
 * exits the process (the machine would crash-loop); /health reports it instead. `clock` is the
 * market clock (default Date.now); a test entry hands in the replay's
 * (test-support/replay-clock-main.ts).
 */
export async function runMachineRuntimeProcess(opts: { clock?: () => number } = {}): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG: a bad environment will not fix itself by restarting
    }
    throw err;
  }
  const log = createRuntimeLogger({ level: config.LOG_LEVEL, userId: config.USER_ID });

  // The store is built before the runtime but reads the token the runtime holds (renewals included).
  const ref: { runtime?: MachineRuntime } = {};
  const store = lazyStore(config.USER_ID, () =>
    openUserStore({
      userId: config.USER_ID,
      // Read per request, so a token renewed through /control/credentials takes effect at once.
      accessToken: () => ref.runtime?.getAccessToken() ?? config.USER_TOKEN,
      supabaseUrl: config.SUPABASE_URL,
      supabaseAnonKey: config.SUPABASE_ANON_KEY,
      machineApiUrl: config.MACHINE_API_URL,
      machineKey: config.TOKEN_VERIFY_SECRET,
    }),
  );

  const runtime = await startMachineRuntime({
    config: {
      userId: config.USER_ID,
      userToken: config.USER_TOKEN,
      binanceWsUrl: config.BINANCE_WS_URL,
      binanceRestUrl: config.BINANCE_REST_URL,
      tokenVerifySecret: config.TOKEN_VERIFY_SECRET,
      supabaseUrl: config.SUPABASE_URL,
      controlToken: config.CONTROL_TOKEN,
      machineApiUrl: config.MACHINE_API_URL,
      aiNoteTimeoutMs: config.AI_NOTE_TIMEOUT_MS,
      traderPollSeconds: config.TRADER_POLL_SECONDS,
      machineId: config.FLY_MACHINE_ID,
      catchUpMaxMs: config.RUNTIME_CATCHUP_MAX,
    },
    store,
    log,
    clock: opts.clock,
    metrics: createMetrics({ defaultMetrics: true }),
  });

  ref.runtime = runtime;
  await runtime.app.listen({ port: config.PORT, host: config.HOST });
  log.info({ port: config.PORT }, 'machine runtime listening');
  await runtime.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    runtime
      .stop()
      .then(() => store.close())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

/** Opens the real store on first use and again after a failed open, so boot never depends on it. */
function lazyStore(
  userId: string,
  open: () => Promise<UserStore & { close(): Promise<void> }>,
): UserStore & { close(): Promise<void> } {
  let opening: Promise<UserStore & { close(): Promise<void> }> | undefined;
  const get = () => {
    opening ??= open().catch((err: unknown) => {
      opening = undefined;
      throw err;
    });
    return opening;
  };
  return {
    userId,
    listTraders: async (o) => (await get()).listTraders(o),
    insertTradeSignal: async (s) => (await get()).insertTradeSignal(s),
    listTradeSignals: async (o) => (await get()).listTradeSignals(o),
    getMachine: async () => (await get()).getMachine(),
    getRuntimeCheckpoint: async () => (await get()).getRuntimeCheckpoint(),
    putRuntimeCheckpoint: async (c) => (await get()).putRuntimeCheckpoint(c),
    close: async () => {
      // A store that never opened has nothing to close; its open error was already reported.
      const opened = await opening?.catch(() => undefined);
      await opened?.close();
    },
  };
}
