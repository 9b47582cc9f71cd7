import type { AbuseContext } from './harness';

/* What only operators (or this host) may reach: metrics, fly-local's admin routes, a start/stop loop. */

/** Metrics and fly-local admin without a token, and a start right after a stop (each on its own app). */
export async function opsCases(ctx: AbuseContext): Promise<void> {
  const { api, add, status } = ctx;
  {
    const scraped = await api.startApp({ API_METRICS_TOKEN: 'abuse-metrics-token-0123' });
    const r = await status('GET', '/metrics', { base: scraped.url });
    add('ops', 'metrics without a token', 'GET /metrics (API_METRICS_TOKEN set), no token', '401', r.text);
  }
  {
    const flyAdmin = api.stack.flyLocal.url.replace(/\/v1$/, '/admin/machines');
    const res = await fetch(flyAdmin);
    add('ops', 'fly-local admin without a token', 'GET fly-local /admin/machines, no token', '401', String(res.status));
  }
  {
    const cooled = await api.startApp({ API_PROVISION_COOLDOWN: '1 hour' });
    const c = await api.createUser('elite');
    const tokenC = await api.token(c);
    await status('POST', '/v1/machines', { base: cooled.url, token: tokenC });
    await api.waitForStatus(tokenC, (x) => x.state === 'running', 90_000);
    await status('POST', '/v1/machines/me/stop', { base: cooled.url, token: tokenC });
    await api.waitForStatus(tokenC, (x) => x.state === 'stopped', 90_000);
    const r = await status('POST', '/v1/machines', { base: cooled.url, token: tokenC });
    add('ops', 'start/stop loop', 'POST /v1/machines right after a stop (cooldown 1 hour)', '429', r.text);
  }
}
