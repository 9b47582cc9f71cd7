import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/*
 * Metrics bumped on the hot path (every frame, every closed candle) are counted in plain numbers and
 * handed to prom-client when the registry is read (its `collect` hook): prom-client's `inc` and `set`
 * hash their labels and allocate two objects per call, which was a few percent of the feed's CPU and
 * of its garbage. What a scrape (or `getSingleMetricAsString`) reads is the same.
 */
type Config = { name: string; help: string; registers: Registry[] };

/** A counter without labels: `inc(n)` adds to a number until the next read. */
function hotCounter(config: Config): { inc(n?: number): void } {
  const pending = { n: 0 };
  new Counter({
    ...config,
    collect() {
      if (pending.n > 0) this.inc(pending.n);
      pending.n = 0;
    },
  });
  return { inc: (n = 1) => void (pending.n += n) };
}

/** A counter with one label: `labels(value)` once, then `inc(n)` on what it returns, per event. */
function hotLabelledCounter(config: Config & { label: string }): { labels(value: string): { inc(n?: number): void } } {
  const pending = new Map<string, { n: number }>();
  new Counter({
    ...config,
    labelNames: [config.label],
    collect() {
      for (const [value, p] of pending) if (p.n > 0) this.inc({ [config.label]: value }, p.n);
      for (const p of pending.values()) p.n = 0;
    },
  });
  return {
    labels(value) {
      const p = pending.get(value) ?? { n: 0 };
      pending.set(value, p);
      return { inc: (n = 1) => void (p.n += n) };
    },
  };
}

/** A gauge that only the last value set matters of. */
function hotGauge(config: Config): { set(v: number): void } {
  const last = { v: NaN, set: false };
  new Gauge({
    ...config,
    collect() {
      if (last.set) this.set(last.v);
    },
  });
  return {
    set(v) {
      last.v = v;
      last.set = true;
    },
  };
}

/** The runtime's own registry, so tests can build many runtimes in one process without name clashes. */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'runtime_' });
  const registers = [registry];
  return {
    registry,
    feedMessages: hotCounter({
      name: 'runtime_feed_messages_total',
      help: 'Frames received from Binance',
      registers,
    }),
    feedMalformed: new Counter({
      name: 'runtime_feed_malformed_total',
      help: 'Frames that were not valid JSON or not a valid kline (ignored)',
      registers,
    }),
    feedReconnects: new Counter({
      name: 'runtime_feed_reconnects_total',
      help: 'Feed connections opened after the first, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    feedConnections: new Gauge({ name: 'runtime_feed_connections', help: 'Open Binance connections', registers }),
    feedStreams: new Gauge({ name: 'runtime_feed_streams', help: 'Kline streams subscribed', registers }),
    feedLag: hotGauge({
      name: 'runtime_feed_lag_seconds',
      help: 'Receive time minus Binance event time of the latest kline frame',
      registers,
    }),
    restRequests: new Counter({
      name: 'runtime_rest_requests_total',
      help: 'Klines REST requests (warm-up and gap backfill), by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    candlesClosed: hotLabelledCounter({
      name: 'runtime_candles_closed_total',
      help: 'Closed candles processed exactly once, by source',
      label: 'source',
      registers,
    }),
    evaluations: hotCounter({ name: 'runtime_evaluations_total', help: 'Trader evaluations', registers }),
    signals: new Counter({ name: 'runtime_signals_total', help: 'Signals fired', registers }),
    signalsStored: new Counter({
      name: 'runtime_signals_stored_total',
      help: 'Signals written to the store',
      registers,
    }),
    signalsDropped: new Counter({
      name: 'runtime_signals_dropped_total',
      help: 'Signals dropped because the undelivered queue was full',
      registers,
    }),
    signalsRepeated: new Counter({
      name: 'runtime_signals_repeated_total',
      help: 'Firings replayed after a restart that the store already had (not sent to browsers again)',
      registers,
    }),
    catchUpCandles: new Counter({
      name: 'runtime_catchup_candles_total',
      help: 'Closes missed while the machine was down, evaluated after its restart',
      registers,
    }),
    checkpointWrites: new Counter({
      name: 'runtime_checkpoint_writes_total',
      help: 'Runtime checkpoint writes, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    signalQueue: new Gauge({ name: 'runtime_signal_queue', help: 'Signals waiting for the store', registers }),
    storeErrors: new Counter({
      name: 'runtime_store_errors_total',
      help: 'Failed store calls',
      labelNames: ['op'] as const,
      registers,
    }),
    aiNotes: new Counter({
      name: 'runtime_ai_notes_total',
      help: 'Gemini notes, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    wsClients: new Gauge({ name: 'runtime_ws_clients', help: 'Connected browser WebSockets', registers }),
    wsDropped: new Counter({
      name: 'runtime_ws_dropped_total',
      help: 'Browser sockets dropped for being too slow',
      registers,
    }),
    traders: new Gauge({ name: 'runtime_traders', help: 'Enabled, valid traders loaded', registers }),
  };
}
export type MachineRuntimeMetrics = ReturnType<typeof createMetrics>;
