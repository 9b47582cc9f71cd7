import { faultsSchema, type FaultInjector } from './faults';
import type { FlyLocalMachineInfo } from './fly-local';
import { authorized, type FlyLocalHttp } from './http';
import type { MachineRecord, MachineTable } from './machine-table';
import { isAlive, signalGroup } from './processes';
import type { Supervisor } from './supervisor';

/** The admin routes (not Fly; dev and tests) under `/admin/`, behind the same token as the Machines API. */

export function machineInfo(m: MachineRecord, logFile: string): FlyLocalMachineInfo {
  return {
    id: m.id,
    app: m.app,
    name: m.name,
    state: m.state,
    pid: m.pid,
    alive: m.pid !== undefined && isAlive(m.pid),
    port: m.port,
    logFile,
    restarts: m.restarts,
    lastExitCode: m.lastExitCode,
  };
}

export interface AdminRoutesOptions {
  http: FlyLocalHttp;
  token: string;
  table: MachineTable;
  supervisor: Supervisor;
  faults: FaultInjector;
}

export function registerAdminRoutes({ http: { app }, token, table, supervisor, faults }: AdminRoutesOptions): void {
  const { machines } = table;
  const info = (m: MachineRecord) => machineInfo(m, supervisor.logFile(m.id));

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/admin/')) return;
    if (!authorized(req.headers.authorization, token))
      return reply.code(401).send({ error: 'unauthorized: /admin needs Authorization: Bearer <fly-local token>' });
  });

  app.get('/admin/faults', async () => faults.get());
  app.put('/admin/faults', async (req, reply) => {
    const parsed = faultsSchema.safeParse(req.body ?? {});
    if (!parsed.success) return reply.code(400).send({ error: parsed.error.message });
    faults.set(parsed.data);
    return reply.code(204).send();
  });
  app.get('/admin/machines', async () => [...machines.values()].map(info));
  app.post<{ Params: { id: string }; Body: { signal?: NodeJS.Signals } | undefined }>(
    '/admin/machines/:id/kill',
    async (req, reply) => {
      const m = machines.get(req.params.id);
      if (!m) return reply.code(404).send({ error: 'machine not found' });
      // A crash, not a stop: the restart policy applies.
      const killed = m.pid !== undefined && signalGroup(m.pid, req.body?.signal ?? 'SIGKILL');
      return reply.code(killed ? 204 : 409).send(killed ? undefined : { error: 'machine has no running process' });
    },
  );
  app.post('/admin/reset', async (_req, reply) => {
    await supervisor.killAll();
    machines.clear();
    faults.set({});
    table.resetJournal();
    return reply.code(204).send();
  });
}
