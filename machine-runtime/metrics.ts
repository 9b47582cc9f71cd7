import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The runtime's own registry, so tests can build many runtimes in one process without name clashes. */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'runtime_' });
  const registers = [registry];
  return {
    registry,
    feedMessages: new Counter({
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
    feedLag: new Gauge({
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
    candlesClosed: new Counter({
      name: 'runtime_candles_closed_total',
      help: 'Closed candles processed exactly once, by source',
      labelNames: ['source'] as const,
      registers,
    }),
    evaluations: new Counter({ name: 'runtime_evaluations_total', help: 'Trader evaluations', registers }),
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
