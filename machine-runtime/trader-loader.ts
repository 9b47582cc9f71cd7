import type { UserStore } from '../store/types';
import type { InvalidTrader, TraderEngine } from './engine';
import type { BinanceFeed } from './feed';
import { backoffMs, type Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';

/** A symbol Binance REST refused (-1121) is not asked for again for this long (a new listing may appear). */
const UNKNOWN_SYMBOL_RECHECK_MS = 3_600_000;

export interface TraderLoaderDeps {
  store: UserStore;
  engine: TraderEngine;
  feed: BinanceFeed;
  log: Log;
  metrics: MachineRuntimeMetrics;
  /** After every successful load (the runtime tells the browsers its new state). */
  onLoaded: () => void;
}

/**
 * Reads the user's enabled traders into the engine and the feed's streams to match. Loads are
 * serialised (a reload asked for during one runs once more after it); a failure keeps the old
 * traders and retries with backoff. Traders naming a symbol Binance refused are refused for an hour.
 */
export function createTraderLoader(deps: TraderLoaderDeps) {
  const { store, engine, feed, log, metrics } = deps;
  /** Symbols Binance REST refused (-1121), with why and when: their traders are refused at load. */
  const unknownSymbols = new Map<string, { reason: string; at: number }>();
  let loadedAt = 0;
  let error: string | null = null;
  let invalid: InvalidTrader[] = [];
  let reloading: Promise<void> | null = null;
  let reloadAgain = false;
  let failures = 0;
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];

  const loadOnce = async () => {
    try {
      const rows = await store.listTraders({ enabledOnly: true });
      for (const [symbol, u] of unknownSymbols)
        if (Date.now() - u.at > UNKNOWN_SYMBOL_RECHECK_MS) unknownSymbols.delete(symbol);
      const result = engine.setTraders(rows, {
        unknownSymbols: new Map([...unknownSymbols].map(([symbol, u]) => [symbol, u.reason])),
      });
      invalid = result.invalid;
      if (result.invalid.length) log.warn({ invalid: result.invalid }, 'some traders were refused');
      feed.setStreams(engine.streams());
      metrics.traders.set(result.loaded);
      loadedAt = Date.now();
      error = null;
      failures = 0;
      deps.onLoaded();
    } catch (err) {
      metrics.storeErrors.inc({ op: 'listTraders' });
      error = err instanceof Error ? err.message : String(err);
      log.warn({ err }, 'loading traders failed; will retry');
      const retry = setTimeout(() => void reload(), backoffMs(failures++, 1_000, 30_000));
      retry.unref();
      timers.push(retry);
    }
  };
  const reload = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        await loadOnce();
      } while (reloadAgain && !stopped);
    })().finally(() => {
      reloading = null;
    });
    return reloading;
  };

  return {
    reload,
    /** Binance does not know `symbol`: its traders are refused at the next load, which starts at once. */
    refuseSymbol(symbol: string, reason: string) {
      unknownSymbols.set(symbol, { reason, at: Date.now() });
      void reload();
    },
    /** When the traders were last loaded (0: never). */
    get loadedAt() {
      return loadedAt;
    },
    /** Why the last load failed, or null when it succeeded. */
    get error() {
      return error;
    },
    /** The traders refused at the last load, and why. */
    get invalid() {
      return invalid;
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
    },
  };
}

export type TraderLoader = ReturnType<typeof createTraderLoader>;
