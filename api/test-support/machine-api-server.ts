import type { AddressInfo } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { UserStore } from '../../store/types';
import { registerMachineApi } from '../machine-api';
import { HttpProblem, sendProblem } from '../problem';

/**
 * Only the machine-facing routes (`/v1/machine/*`, the real ones of machine-api.ts) on a free port,
 * over a real store: for tests of machines that need the API as their store and nothing else of it
 * (no Temporal, no Fly). `beforeRoute` runs first on every request (a test can hold one back).
 */
export async function startMachineApiServer(opts: {
  jwtSecret: string;
  userStore: (userId: string) => UserStore;
  beforeRoute?: (req: FastifyRequest) => Promise<void>;
}): Promise<{ app: FastifyInstance; url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  // The app's shape of errors (api/app.ts), without its logging.
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) =>
    err instanceof HttpProblem
      ? sendProblem(reply, err.statusCode, err.detail, err.extra.errors ? { errors: err.extra.errors } : {})
      : sendProblem(reply, err.statusCode ?? 500, err.message),
  );
  if (opts.beforeRoute) app.addHook('onRequest', opts.beforeRoute);
  await app.register(rateLimit, { global: false });
  await registerMachineApi(app, { jwtSecret: opts.jwtSecret, notesPerMinute: 30, userStore: opts.userStore });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    close: () => app.close(),
  };
}
