import { timingSafeEqual } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceStore } from '../store/types';
import { bearerToken } from './auth';
import type { ApiConfig } from './config';
import type { ApiMetrics } from './metrics';
import { buildOpenApi } from './openapi';
import { HttpProblem } from './problem';

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** What operators and platforms read: `/openapi.json`, `/healthz` (dependencies reachable), `/metrics`. */
export function registerOpsRoutes(
  app: FastifyInstance,
  deps: { config: ApiConfig; temporal: Client; store: ServiceStore; metrics: ApiMetrics },
) {
  const { config, temporal, store, metrics } = deps;
  const openapi = buildOpenApi();
  app.get('/openapi.json', async () => openapi);

  app.get('/healthz', async (req) => {
    const [temporalCheck, storeCheck] = await Promise.all([
      reachable(() => temporal.withDeadline(Date.now() + 2_000, () => temporal.workflowService.getSystemInfo({}))),
      reachable(() => withTimeout(store.getSubscriptionTier(NIL_UUID), 2_000)),
    ]);
    // Public: says reachable or not; what went wrong (hosts, messages) goes to the log only.
    for (const [name, check] of [
      ['temporal', temporalCheck],
      ['store', storeCheck],
    ] as const)
      if (!check.ok) req.log.warn({ dependency: name, error: check.error }, 'healthz: dependency unreachable');
    return { ok: true, temporal: { ok: temporalCheck.ok }, store: { ok: storeCheck.ok } };
  });

  app.get('/metrics', async (req, reply) => {
    if (!metricsAllowed(req, config.API_METRICS_TOKEN))
      throw new HttpProblem(
        config.API_METRICS_TOKEN ? 401 : 403,
        config.API_METRICS_TOKEN
          ? 'metrics need Authorization: Bearer <API_METRICS_TOKEN>'
          : 'metrics are served to loopback clients only (set API_METRICS_TOKEN to scrape from elsewhere)',
      );
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/** `/metrics`: the bearer token when one is configured (constant-time), else loopback clients only. */
function metricsAllowed(req: FastifyRequest, token: string | undefined): boolean {
  if (!token) return LOOPBACK.test(req.socket.remoteAddress ?? '');
  const given = Buffer.from(bearerToken(req, false) ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function reachable(check: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await check();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
