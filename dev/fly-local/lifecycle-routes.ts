import { HttpError, MACHINES_BASE as base, body, machineOf, requireLease, type FlyLocalHttp } from './http';
import { addEvent, type MachineTable, type State } from './machine-table';
import { signalGroup } from './processes';
import type { Supervisor } from './supervisor';

/** The Machines API's lifecycle routes: start, stop, suspend, and wait for a state. */

const persistentStates: State[] = ['created', 'started', 'stopped', 'suspended', 'failed', 'destroyed'];
const waitStates = ['started', 'stopped', 'suspended', 'destroyed', 'failed', 'settled'];

function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value * 1000;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export interface LifecycleRoutesOptions {
  http: FlyLocalHttp;
  table: MachineTable;
  supervisor: Supervisor;
  /** Grace between the stop signal and SIGKILL when neither the request nor stop_config gives one. */
  stopTimeoutMs: number;
}

export function registerLifecycleRoutes({
  http: { app, handle, hanging },
  table,
  supervisor,
  stopTimeoutMs,
}: LifecycleRoutesOptions): void {
  const { machines, listeners, setState } = table;
  const { enqueue, launch, killProcess } = supervisor;

  app.post(
    `${base}/:machine_id/start`,
    handle('start', (req) => {
      const m = machineOf(machines, req);
      requireLease(m, req);
      const previous = m.state;
      if (!['created', 'stopped', 'failed', 'suspended'].includes(previous)) {
        throw new HttpError(412, `failed_precondition: unable to start machine from current state: '${previous}'`);
      }
      m.desired = 'started';
      m.restarts = 0;
      if (previous === 'suspended' && m.pid !== undefined) {
        // Resume from the "snapshot": the process was only frozen.
        signalGroup(m.pid, 'SIGCONT');
        addEvent(m, 'start', 'started', 'user');
        setState(m, 'started');
      } else {
        setState(m, 'starting');
        enqueue(m, () => launch(m, 'start'));
      }
      return { status: 200, body: { previous_state: previous } };
    }),
  );

  app.post(
    `${base}/:machine_id/stop`,
    handle('stop', (req) => {
      const m = machineOf(machines, req);
      requireLease(m, req);
      const b = body(req);
      if (['created', 'stopped', 'failed'].includes(m.state) && m.pid === undefined)
        return { status: 200, body: { ok: true } };
      const signal = (
        typeof b.signal === 'string' ? b.signal : (m.config.stop_config?.signal ?? 'SIGINT')
      ) as NodeJS.Signals;
      const graceMs = parseDurationMs(b.timeout) ?? parseDurationMs(m.config.stop_config?.timeout) ?? stopTimeoutMs;
      m.desired = 'stopped';
      addEvent(m, 'stop', 'stopping', 'user');
      setState(m, 'stopping');
      enqueue(m, async () => {
        await killProcess(m, signal, graceMs);
        if (m.desired === 'stopped') setState(m, 'stopped');
      });
      return { status: 200, body: { ok: true } };
    }),
  );

  app.post(
    `${base}/:machine_id/suspend`,
    handle('suspend', (req) => {
      const m = machineOf(machines, req);
      requireLease(m, req);
      if (m.state !== 'started' || m.pid === undefined) {
        throw new HttpError(412, `failed_precondition: unable to suspend machine from current state: '${m.state}'`);
      }
      m.desired = 'suspended';
      setState(m, 'suspending');
      // Freezing the process group stands in for Fly's memory snapshot.
      signalGroup(m.pid, 'SIGSTOP');
      addEvent(m, 'suspend', 'suspended', 'user');
      setState(m, 'suspended');
      return { status: 200, body: { ok: true } };
    }),
  );

  app.get(
    `${base}/:machine_id/wait`,
    handle('wait', async (req) => {
      const m = machineOf(machines, req, { allowDestroyed: true });
      const q = req.query;
      const states = [q.state ?? 'started']
        .flat()
        .flatMap((s) => s.split(','))
        .filter(Boolean);
      const bad = states.find((s) => !waitStates.includes(s));
      if (bad) throw new HttpError(400, `invalid_argument: invalid state "${bad}"`);
      const timeoutRaw = Array.isArray(q.timeout) ? q.timeout[0] : q.timeout;
      const timeoutMs =
        timeoutRaw === undefined ? 60_000 : parseDurationMs(/^\d+$/.test(timeoutRaw) ? Number(timeoutRaw) : timeoutRaw);
      if (timeoutMs === undefined || timeoutMs < 1000 || timeoutMs > 60_000) {
        throw new HttpError(400, 'invalid_argument: timeout out of range [1s,1m0s]');
      }
      const reached = () =>
        states.some((s) => s === m.state || (s === 'settled' && persistentStates.includes(m.state)));
      if (!reached()) {
        const ok = await new Promise<boolean>((resolve) => {
          const set = listeners.get(m.id) ?? new Set();
          listeners.set(m.id, set);
          const finish = (value: boolean) => {
            clearTimeout(timer);
            set.delete(check);
            hanging.delete(abort);
            resolve(value);
          };
          const check = () => reached() && finish(true);
          const abort = () => finish(false);
          const timer = setTimeout(abort, timeoutMs);
          set.add(check);
          hanging.add(abort);
        });
        if (!ok) {
          throw new HttpError(
            408,
            `deadline_exceeded: machine failed to reach desired state, ${states.join(', ')}, current state: ${m.state}`,
          );
        }
      }
      return {
        status: 200,
        body: { ok: true, state: m.state, version: m.instance_id, event_id: m.events.at(-1)?.id ?? '' },
      };
    }),
  );
}
