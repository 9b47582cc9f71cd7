import { intervalMs, parseStreamKey } from './candles';
import type { TraderEngine } from './engine';
import type { BinanceFeed } from './feed';
import type { TradeSignalSink } from './trade-signals';
import type { TraderLoader } from './trader-loader';

export interface HealthDeps {
  userId: string;
  /** Wall-clock ms the runtime was built at. */
  startedAt: number;
  feed: BinanceFeed;
  engine: TraderEngine;
  sink: TradeSignalSink;
  traders: Pick<TraderLoader, 'loadedAt' | 'error' | 'invalid'>;
  clientCount: () => number;
  /** When the current user token expires (undefined: unknown). */
  tokenExpiresAt: () => number | undefined;
  /** How old the last evaluation may be; default 2 × shortest interval + 60 s. */
  evaluationStaleMs?: number;
}

/**
 * What `/health` answers (the bare `ok` without a control token, control.ts) and browsers get as
 * `state`: ok only when the work is alive, else the reasons. See README, "HTTP and WebSocket".
 */
export function createHealthCheck(d: HealthDeps) {
  const { feed, engine, sink, traders } = d;
  return function health() {
    const reasons: string[] = [];
    const fs = feed.status();
    const streams = engine.streams();
    const tokenExpiresAt = d.tokenExpiresAt();
    if (!traders.loadedAt) reasons.push(`traders not loaded${traders.error ? `: ${traders.error}` : ''}`);
    else if (traders.error) reasons.push(`trader reload failing: ${traders.error}`);
    if (streams.length > 0) {
      if (!fs.connected) reasons.push(`feed disconnected (${fs.connectedShards}/${fs.shards} connections)`);
      if (fs.warmingUp > 0) reasons.push(`warming up ${fs.warmingUp} streams`);
      const shortest = Math.min(...streams.map((k) => intervalMs(parseStreamKey(k).interval)));
      const staleMs = d.evaluationStaleMs ?? 2 * shortest + 60_000;
      const age = Date.now() - engine.stats.lastEvaluationAt;
      if (fs.warmingUp === 0 && age > staleMs) reasons.push(`no evaluation for ${Math.round(age / 1000)} s`);
    }
    if (sink.storeFailing) reasons.push(`store unreachable: ${sink.lastStoreError?.message ?? ''}`);
    if (tokenExpiresAt !== undefined && tokenExpiresAt < Date.now()) reasons.push('user token expired');
    return {
      ok: reasons.length === 0,
      reasons,
      idle: streams.length === 0,
      userId: d.userId,
      uptimeSeconds: Math.round((Date.now() - d.startedAt) / 1000),
      feed: fs,
      traders: engine.traderCount(),
      invalidTraders: traders.invalid,
      streams: streams.length,
      lastEvaluationAt: engine.stats.lastEvaluationAt ? new Date(engine.stats.lastEvaluationAt).toISOString() : null,
      candlesProcessed: engine.stats.candles,
      signalsFired: engine.stats.firings,
      signalQueue: sink.queued,
      wsClients: d.clientCount(),
      tokenExpiresAt: tokenExpiresAt ? new Date(tokenExpiresAt).toISOString() : null,
    };
  };
}

/** The `metrics` message browsers get every 5 s: the feed's, the engine's and the sink's counters. */
export function metricsMessage(d: Pick<HealthDeps, 'feed' | 'engine' | 'sink'>) {
  return {
    type: 'metrics',
    at: new Date().toISOString(),
    feedMessages: d.feed.status().messages,
    malformed: d.feed.status().malformed,
    reconnects: d.feed.status().reconnects,
    candlesProcessed: d.engine.stats.candles,
    evaluations: d.engine.stats.evaluations,
    signalsFired: d.engine.stats.firings,
    signalQueue: d.sink.queued,
    heapUsedBytes: process.memoryUsage().heapUsed,
  };
}
