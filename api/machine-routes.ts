import type { FastifyInstance } from 'fastify';
import type { MachineWatcher } from './machine-events';
import { provisionRequestSchema, type MachineService } from './machines';
import { regionFor } from './options';
import { HttpProblem, zodErrors } from './problem';
import type { RouteGuards } from './route-guards';
import type { createStreamGateway } from './stream';

/**
 * The caller's machine: `POST /v1/machines` (provision), `GET /v1/machines/me` (status),
 * `POST /v1/machines/me/stop` and the WebSocket `GET /v1/machines/me/stream`. Every change pokes the
 * user's status watcher, so their open pages hear of it at once.
 */
export function registerMachineRoutes(
  app: FastifyInstance,
  deps: {
    guards: Pick<RouteGuards, 'userOf' | 'userRoute' | 'statusRoute' | 'streamRoute'>;
    machines: MachineService;
    watcher: MachineWatcher;
    gateway: ReturnType<typeof createStreamGateway>;
    /** API_REGIONS: the regions a machine may start in (the first is the default). */
    regions: readonly string[];
  },
) {
  const { guards, machines, watcher, gateway } = deps;
  const { userOf, userRoute } = guards;

  app.post('/v1/machines', userRoute, async (req, reply) => {
    const user = userOf(req);
    const body = provisionRequestSchema.safeParse(req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'invalid request body', { errors: zodErrors(body.error) });
    const region = regionFor(body.data.region, deps.regions);
    const entitled = await machines.entitlement(user.id);
    // 403: not on the elite tier; 402: elite, but the payment is overdue and its grace period has ended.
    if (!entitled.entitled) throw new HttpProblem(entitled.denied === 'payment_overdue' ? 402 : 403, entitled.detail);
    const started = await machines.provision(user.id, { ...body.data, region });
    watcher.poke(user.id);
    req.log.info({ userId: user.id, workflowId: started.workflowId, state: started.state }, 'provision requested');
    return reply
      .code(202)
      .header('location', '/v1/machines/me')
      .send({ workflowId: started.workflowId, state: started.state });
  });

  app.get('/v1/machines/me', guards.statusRoute, async (req) => {
    const status = await machines.status(userOf(req).id);
    if (!status) throw new HttpProblem(404, 'you have no machine; POST /v1/machines starts one');
    return status;
  });

  app.post('/v1/machines/me/stop', userRoute, async (req, reply) => {
    const user = userOf(req);
    const result = await machines.stop(user.id);
    watcher.poke(user.id);
    req.log.info({ userId: user.id }, 'stop requested');
    return reply.code(202).send(result);
  });

  app.route({
    method: 'GET',
    url: '/v1/machines/me/stream',
    ...guards.streamRoute,
    // A plain GET (no Upgrade) gets a clear answer instead of an empty 404.
    handler: async () => {
      throw new HttpProblem(426, 'this route is a WebSocket: open it with an Upgrade request', {
        headers: { upgrade: 'websocket' },
      });
    },
    wsHandler: (socket, req) => {
      const user = userOf(req);
      void gateway.handle(socket, user.id, user.expiresAt);
    },
  });
}
