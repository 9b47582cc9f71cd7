import { createApiMetrics } from './metrics';
import { startMetricsServer } from './metrics-server';

test('the private metrics port answers GET /metrics in Prometheus text, and nothing else', async () => {
  const metrics = createApiMetrics();
  metrics.requests.inc({ method: 'GET', route: '/healthz', status: '200' });
  const server = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toMatch(/route="\/healthz"/);
    expect((await fetch(`http://127.0.0.1:${server.port}/v1/machines/me`)).status).toBe(404);
  } finally {
    await server.close();
  }
});
