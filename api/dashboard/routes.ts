import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PAGE_STYLESHEETS } from './assets';
import { dashboardBundle, supabaseAuthBundle } from './bundle';

/**
 * The trader's page: `/`, its script (bundled with client/: ./bundle.ts) and its stylesheets (./assets.ts).
 * With a Supabase project (`supabaseUrl`), also supabase-js for the sign-in form, and the project's
 * origin in `connect-src` so the page may talk to Supabase Auth.
 */
export async function registerDashboardRoutes(app: FastifyInstance, opts: { supabaseUrl?: string } = {}) {
  const connectSrc = ["'self'", 'ws:', 'wss:', ...(opts.supabaseUrl ? [new URL(opts.supabaseUrl).origin] : [])];
  const page = (file: string | Buffer, type: string) => {
    const body = Buffer.isBuffer(file) ? file : readFileSync(join(__dirname, file));
    return async (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header(
          'content-security-policy',
          `default-src 'self'; connect-src ${connectSrc.join(' ')}; img-src 'self' data:; frame-ancestors 'none'`,
        )
        .send(body);
  };
  app.get('/', page('index.html', 'text/html; charset=utf-8'));
  app.get('/dashboard.js', page(Buffer.from(await dashboardBundle()), 'text/javascript; charset=utf-8'));
  for (const css of PAGE_STYLESHEETS) app.get(`/${css}`, page(css, 'text/css; charset=utf-8'));
  if (opts.supabaseUrl)
    app.get('/supabase-auth.js', page(Buffer.from(await supabaseAuthBundle()), 'text/javascript; charset=utf-8'));
}
