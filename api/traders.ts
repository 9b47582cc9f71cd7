import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { mintMachineAccessToken } from '../common/credentials';
import type { FlyClient } from '../fly/client';
import { machineAddress } from '../fly/machines';
import type { UserTraderStore } from '../store/types';
import type { AuthenticatedUser } from './auth';
import type { MachineService } from './machines';
import { HttpProblem, zodErrors } from './problem';
import { RUNTIME_INTERNAL_PORT } from './stream';
import {
  createTraderSchema,
  parseWithDefinition,
  toTraderResponse,
  traderIdSchema,
  updateTraderSchema,
} from './traders-schema';

const RELOAD_TIMEOUT_MS = 3_000;

export interface TraderRouteDeps {
  /** Auth + the per-user rate limit, as every /v1/machines route has them. */
  userRoute: RouteShorthandOptions;
  userOf: (req: FastifyRequest) => AuthenticatedUser;
  /** The caller's store under RLS; undefined when the deployment has none for users (501). */
  userStore?: (user: AuthenticatedUser, req: FastifyRequest) => UserTraderStore;
  maxTradersPerUser: number;
  /** Asks the user's running machine to re-read its traders now (best effort, never throws). */
  reloadMachine: (userId: string) => Promise<ReloadOutcome>;
}

export type ReloadOutcome = 'reloaded' | 'no_machine' | 'failed';

/**
 * The signed-in user's traders: list, create, read, change (enable/disable is a PATCH of `enabled`),
 * delete. Every read and write goes through the user's own store, so RLS decides what exists: another
 * user's trader is a 404 like one that never was. After a change the user's machine is asked to reload
 * (in the background: the answer does not wait for it; the runtime also polls).
 */
export function registerTraderRoutes(app: FastifyInstance, deps: TraderRouteDeps) {
  const { userRoute, userOf } = deps;
  const storeOf = (req: FastifyRequest) => {
    if (!deps.userStore)
      throw new HttpProblem(501, 'traders are not available on this server: it has no user store configured');
    return deps.userStore(userOf(req), req);
  };
  const idOf = (req: FastifyRequest) => {
    const p = traderIdSchema.safeParse(req.params);
    if (!p.success) throw new HttpProblem(400, 'not a trader id', { errors: zodErrors(p.error) });
    return p.data.id;
  };
  const notFound = (id: string) => new HttpProblem(404, `you have no trader ${id}`);
  const changed = (req: FastifyRequest) => {
    const userId = userOf(req).id;
    void deps.reloadMachine(userId).then((outcome) => req.log.info({ userId, outcome }, 'machine trader reload'));
  };

  app.get('/v1/traders', userRoute, async (req) => {
    const traders = await storeOf(req).listTraders();
    return { traders: traders.map(toTraderResponse), max: deps.maxTradersPerUser };
  });

  app.post('/v1/traders', userRoute, async (req, reply) => {
    const body = parseWithDefinition(createTraderSchema, req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'not a valid trader', { errors: body.errors });
    const created = await storeOf(req).createTrader(body.data, { maxTraders: deps.maxTradersPerUser });
    if ('refused' in created)
      throw new HttpProblem(
        409,
        `you already have ${created.max} traders, the most one user may have: delete one first`,
      );
    changed(req);
    return reply.code(201).header('location', `/v1/traders/${created.id}`).send(toTraderResponse(created));
  });

  app.get('/v1/traders/:id', userRoute, async (req) => {
    const id = idOf(req);
    const trader = await storeOf(req).getTrader(id);
    if (!trader) throw notFound(id);
    return toTraderResponse(trader);
  });

  app.patch('/v1/traders/:id', userRoute, async (req) => {
    const id = idOf(req);
    const body = parseWithDefinition(updateTraderSchema, req.body ?? {});
    if (!body.success) throw new HttpProblem(400, 'not a valid trader change', { errors: body.errors });
    const trader = await storeOf(req).updateTrader(id, body.data);
    if (!trader) throw notFound(id);
    changed(req);
    return toTraderResponse(trader);
  });

  app.delete('/v1/traders/:id', userRoute, async (req, reply) => {
    const id = idOf(req);
    if (!(await storeOf(req).deleteTrader(id))) throw notFound(id);
    changed(req);
    return reply.code(204).send();
  });
}

/**
 * `POST /control/reload` on the user's machine, found from the user's own workflow and checked
 * against the Fly machine's `user_id` tag (as the stream gateway does), with a control token minted
 * for that user. Never throws: a failure is logged, and the runtime's poll catches up.
 */
export function createMachineReloader(deps: {
  machines: Pick<MachineService, 'runningMachineId'>;
  fly: FlyClient;
  jwtSecret: string;
  log: FastifyBaseLogger;
}) {
  return async (userId: string): Promise<ReloadOutcome> => {
    try {
      const machineId = await deps.machines.runningMachineId(userId);
      if (!machineId) return 'no_machine';
      const machine = await deps.fly.getMachine(machineId);
      if (machine.config?.metadata?.user_id !== userId || machine.state !== 'started') return 'no_machine';
      const token = await mintMachineAccessToken({ jwtSecret: deps.jwtSecret, userId, purpose: 'control' });
      const res = await fetch(new URL('/control/reload', machineAddress(machine, RUNTIME_INTERNAL_PORT).origin), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(RELOAD_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.ok) return 'reloaded';
      deps.log.warn({ userId, machineId, status: res.status }, 'machine refused the trader reload');
      return 'failed';
    } catch (err) {
      deps.log.warn({ err, userId }, 'machine trader reload failed; its poll will pick the change up');
      return 'failed';
    }
  };
}
