import { randomBytes } from 'node:crypto';
import { FLY_LOCAL_PORT_METADATA_KEY } from '../../fly/machines';
import { HttpError, MACHINES_BASE as base, body, bool, machineOf, requireLease, type FlyLocalHttp } from './http';
import {
  LEASE_OWNER,
  addEvent,
  ulid,
  type MachineConfig,
  type MachineRecord,
  type MachineTable,
} from './machine-table';
import { freePort } from '../../test/kit/processes';
import type { ImageCommand, ImageRegistry } from './processes';
import type { Supervisor } from './supervisor';

/** The Machines API's machine routes: create, list, get, update, delete. */

export interface MachinesRoutesOptions {
  http: FlyLocalHttp;
  table: MachineTable;
  supervisor: Supervisor;
  /** Image name → local command; read at every create and update (registerImage() adds to it). */
  images: ImageRegistry;
  /** Region of machines created without one. */
  defaultRegion: string;
  /** Grace between the stop signal and SIGKILL when an update replaces a running process. */
  stopTimeoutMs: number;
}

export function registerMachinesRoutes({
  http: { app, handle },
  table,
  supervisor,
  images,
  defaultRegion,
  stopTimeoutMs,
}: MachinesRoutesOptions): void {
  const { machines, persist, setState, view } = table;
  const { enqueue, launch, killProcess } = supervisor;

  function resolveImage(config: MachineConfig): ImageCommand {
    const image = config.image;
    if (!image) throw new HttpError(400, 'invalid_argument: config.image is required');
    const launch = images[image];
    if (!launch) {
      throw new HttpError(
        422,
        `invalid_argument: image "${image}" is not in fly-local's image registry (FLY_LOCAL_IMAGES); known: ${Object.keys(images).join(', ')}`,
      );
    }
    return launch;
  }

  function configOf(raw: unknown): MachineConfig {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new HttpError(400, 'invalid_argument: config is required');
    const config = structuredClone(raw) as MachineConfig;
    if (config.metadata) delete config.metadata[FLY_LOCAL_PORT_METADATA_KEY]; // ours, never stored
    return config;
  }

  app.post(
    base,
    handle('create', async (req) => {
      const b = body(req);
      const config = configOf(b.config);
      const command = resolveImage(config);
      const name = typeof b.name === 'string' && b.name ? b.name : `local-${randomBytes(4).toString('hex')}`;
      const taken = [...machines.values()].find(
        (m) => m.app === req.params.app_name && m.name === name && m.state !== 'destroyed',
      );
      if (taken) throw new HttpError(409, `already_exists: a machine named "${name}" already exists in this app`);
      const now = new Date().toISOString();
      const m: MachineRecord = {
        id: randomBytes(7).toString('hex'),
        app: req.params.app_name,
        name,
        region: typeof b.region === 'string' && b.region ? b.region : defaultRegion,
        state: 'created',
        desired: bool(b.skip_launch) ? 'stopped' : 'started',
        instance_id: ulid(),
        config,
        launch: command,
        created_at: now,
        updated_at: now,
        events: [],
        port: await freePort(),
        gen: 0,
        restarts: 0,
      };
      addEvent(m, 'launch', 'created', 'user');
      if (typeof b.lease_ttl === 'number' && b.lease_ttl > 0) {
        m.lease = {
          nonce: randomBytes(16).toString('hex'),
          expiresAtMs: Date.now() + b.lease_ttl * 1000,
          owner: LEASE_OWNER,
          description: '',
          version: m.instance_id,
        };
      }
      machines.set(m.id, m);
      persist(m);
      const response = { ...view(m), ...(m.lease ? { nonce: m.lease.nonce } : {}) };
      enqueue(m, () => launch(m, 'create'));
      return { status: 200, body: response };
    }),
  );

  app.get(
    base,
    handle('list', (req) => {
      const q = req.query;
      const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
      const states = [q.state ?? []]
        .flat()
        .flatMap((s) => s.split(','))
        .filter(Boolean);
      const metadata = Object.entries(q)
        .filter(([k]) => k.startsWith('metadata.'))
        .map(([k, v]) => [k.slice('metadata.'.length), first(v)] as const);
      const region = first(q.region);
      const list = [...machines.values()]
        .filter((m) => m.app === req.params.app_name)
        .filter((m) => bool(first(q.include_deleted)) || m.state !== 'destroyed')
        .filter((m) => !region || m.region === region)
        .filter((m) => !states.length || states.includes(m.state))
        .filter((m) => metadata.every(([k, v]) => m.config.metadata?.[k] === v))
        .sort((a, b) => a.created_at.localeCompare(b.created_at));
      return { status: 200, body: list.map((m) => view(m, bool(first(q.summary)))) };
    }),
  );

  app.get(
    `${base}/:machine_id`,
    handle('get', (req) => ({ status: 200, body: view(machineOf(machines, req, { allowDestroyed: true })) })),
  );

  app.post(
    `${base}/:machine_id`,
    handle('update', (req) => {
      const m = machineOf(machines, req);
      requireLease(m, req);
      const b = body(req);
      if (typeof b.name === 'string' && b.name && b.name !== m.name)
        throw new HttpError(400, 'invalid_argument: name cannot be changed');
      if (typeof b.region === 'string' && b.region && b.region !== m.region) {
        throw new HttpError(400, 'invalid_argument: region cannot be changed');
      }
      if (typeof b.current_version === 'string' && b.current_version && b.current_version !== m.instance_id) {
        throw new HttpError(
          409,
          `failed_precondition: current_version ${b.current_version} does not match ${m.instance_id}`,
        );
      }
      const config = configOf(b.config);
      m.launch = resolveImage(config);
      m.config = config;
      m.instance_id = ulid();
      m.restarts = 0;
      m.desired = bool(b.skip_launch) ? 'stopped' : 'started';
      addEvent(m, 'update', 'replacing', 'user');
      const wasRunning = m.pid !== undefined;
      setState(m, 'updating');
      const response = view(m);
      enqueue(m, async () => {
        await killProcess(m, m.config.stop_config?.signal ?? 'SIGINT', stopTimeoutMs);
        if (m.desired === 'started') await launch(m, 'update');
        else if (m.state === 'updating') setState(m, wasRunning ? 'stopped' : 'created');
      });
      return { status: 200, body: response };
    }),
  );

  app.delete(
    `${base}/:machine_id`,
    handle('delete', (req) => {
      const m = machineOf(machines, req);
      requireLease(m, req);
      const running = ['starting', 'started', 'stopping', 'suspending', 'updating'].includes(m.state);
      if (running && !bool(req.query.force)) {
        throw new HttpError(412, 'failed_precondition: unable to destroy machine, not currently stopped or suspended');
      }
      m.desired = 'destroyed';
      addEvent(m, 'destroy', 'destroying', 'user');
      setState(m, 'destroying');
      enqueue(m, async () => {
        await killProcess(m, 'SIGKILL', 0);
        m.lease = undefined;
        setState(m, 'destroyed');
      });
      return { status: 200, body: { ok: true } };
    }),
  );
}
