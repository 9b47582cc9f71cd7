import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The API's Prometheus metrics, on their own registry (several apps can live in one test process). */
export function createApiMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'api_' });
  return {
    registry,
    requests: new Counter({
      name: 'api_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'api_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'api_webhooks_total',
      help: 'Billing webhooks (ours and Stripe’s) by event type (Stripe’s own type; `stripe` before verification) and result',
      labelNames: ['type', 'result'] as const,
      registers: [registry],
    }),
    streams: new Gauge({
      name: 'api_stream_connections',
      help: 'Open stream connections (browser to machine)',
      registers: [registry],
    }),
    streamsOpened: new Counter({
      name: 'api_stream_connections_total',
      help: 'Stream connection attempts by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    streamFrames: new Counter({
      name: 'api_stream_frames_total',
      help: 'Frames relayed by direction',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
