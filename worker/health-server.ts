import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { State } from '@temporalio/worker';
import type { Logger as Pino } from 'pino';

/**
 * The worker's health endpoint (WORKER_HEALTH_PORT): `GET /healthz` answers 200 while the worker runs and 503
 * before it does (bundling, connecting) and once it is stopping, draining or failed; `GET /metrics` is the
 * Prometheus text of WORKER_METRICS_ADDRESS, fetched from it (so one port serves both).
 */
export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface HealthOptions {
  port: number;
  /** Default `::` (every interface, IPv4 too), falling back to 0.0.0.0 where IPv6 is off. */
  host?: string;
  taskQueue: string;
  /** The worker's state (`worker.getState()`), or `STARTING` before the worker exists. */
  state: () => State | 'STARTING';
  /** The Prometheus endpoint's host:port, when there is one. */
  metricsAddress?: string;
  log: Pino;
}

/** `/healthz`'s answer for a worker state. */
export function healthOf(state: State | 'STARTING', taskQueue: string) {
  return state === 'RUNNING'
    ? { status: 200, body: { ok: true, taskQueue, temporal: 'connected', state } }
    : { status: 503, body: { ok: false, taskQueue, state } };
}

/** Where to fetch the metrics from: a wildcard bind address is reached on loopback. */
export function metricsUrl(address: string): string {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = address.slice(at + 1);
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' || host === '[::]' ? '[::1]' : host;
  return `http://${local}:${port}/metrics`;
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function proxyMetrics(res: ServerResponse, address: string | undefined) {
  if (!address) return send(res, 404, JSON.stringify({ error: 'metrics are off (WORKER_METRICS_ADDRESS)' }));
  try {
    const upstream = await fetch(metricsUrl(address), { signal: AbortSignal.timeout(5000) });
    send(res, upstream.status, await upstream.text(), upstream.headers.get('content-type') ?? 'text/plain');
  } catch (err) {
    send(res, 502, JSON.stringify({ error: `metrics endpoint did not answer: ${(err as Error).message}` }));
  }
}

export async function startHealthServer(opts: HealthOptions): Promise<HealthServer> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'GET only' }));
    if (path === '/healthz') {
      const { status, body } = healthOf(opts.state(), opts.taskQueue);
      return send(res, status, JSON.stringify(body));
    }
    if (path === '/metrics') return void proxyMetrics(res, opts.metricsAddress);
    send(res, 404, JSON.stringify({ error: `no route ${path}`, routes: ['/healthz', '/metrics'] }));
  };
  const listen = (host: string) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer(handle);
      server.once('error', reject);
      server.listen(opts.port, host, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  let server: Server;
  try {
    server = await listen(opts.host ?? '::');
  } catch (err) {
    if (opts.host || (err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw err;
    server = await listen('0.0.0.0');
  }
  server.on('error', (err) => opts.log.error({ err }, 'health server error'));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
