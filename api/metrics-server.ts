import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApiMetrics } from './metrics';

/**
 * `API_METRICS_PORT`: the API's Prometheus metrics on a port of their own, for a scraper on the
 * private network (Fly's managed Prometheus sends no token and is not loopback). Only `GET /metrics`;
 * never the public port: don't expose this one in an http_service.
 */
export async function startMetricsServer(opts: {
  port: number;
  host: string;
  metrics: ApiMetrics;
}): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    opts.metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
