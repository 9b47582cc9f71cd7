import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { components } from '../../activities/fly/fly-api';
import { FLY_LOCAL_PORT_METADATA_KEY } from '../../activities/fly/client';
import { FaultInjector, RateLimiter, faultsSchema, type FaultOp, type Faults } from './faults';
import { StateJournal } from './journal';
import {
  REPO_ROOT,
  defaultImageRegistry,
  findMachineProcesses,
  freePort,
  isAlive,
  signalGroup,
  spawnMachineProcess,
  type ImageCommand,
  type ImageRegistry,
} from './processes';

type MachineConfig = components['schemas']['fly.MachineConfig'];
type Machine = components['schemas']['Machine'];

export interface FlyLocalOptions {
  /** The machines' `private_ip` (default 127.0.0.1); in docker compose, the fly-local container's name. */
  privateIp?: string;
  /** 0 picks a free port (tests). */
  port?: number;
  host?: string;
  /** The one accepted API token (`Authorization: Bearer <token>`). */
  token: string;
  /** Where the state (state.json + journal.ndjson) and machine logs live. Default `<repo>/.data/fly-local`. */
  dataDir?: string;
  /** Image name → local command; merged over the default (the runtime image → `npx tsx machine-runtime/main.ts`). */
  imageRegistry?: ImageRegistry;
  faults?: Faults;
  /** Fly's per-action rate limits (429). Off by default. */
  rateLimit?: boolean;
  /** Kill every machine process on close(). Default true (tests); the CLI leaves them running. */
  killMachinesOnClose?: boolean;
  /** Region of machines created without one. Default `local`. */
  defaultRegion?: string;
  /** Grace between the stop signal and SIGKILL when the request gives none. Fly's default kill_timeout is 5 s. */
  stopTimeoutMs?: number;
  /** Restarts under policy `on-failure` (without max_retries) or `always` before the machine is left failed. */
  maxRestarts?: number;
  /** fsync every state journal line (default false: a crash of fly-local loses nothing either way). */
  fsync?: boolean;
  logger?: FastifyServerOptions['logger'];
}

export interface FlyLocalMachineInfo {
  id: string;
  app: string;
  name: string;
  state: string;
  pid: number | undefined;
  alive: boolean;
  port: number;
  logFile: string;
  restarts: number;
  lastExitCode: number | null | undefined;
}

export interface FlyLocal {
  /** Base URL of the API, `http://127.0.0.1:<port>/v1`: use it as FLY_API_URL. */
  url: string;
  port: number;
  dataDir: string;
  close(options?: { killMachines?: boolean }): Promise<void>;
  setFaults(faults: Faults): void;
  registerImage(image: string, command: ImageCommand): void;
  machines(): FlyLocalMachineInfo[];
}

type State =
  | 'created'
  | 'starting'
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'suspending'
  | 'suspended'
  | 'updating'
  | 'failed'
  | 'destroying'
  | 'destroyed';
type Desired = 'started' | 'stopped' | 'suspended' | 'destroyed';

interface LeaseRecord {
  nonce: string;
  expiresAtMs: number;
  owner: string;
  description: string;
  version: string;
}

interface MachineEventRecord {
  id: string;
  type: string;
  status: string;
  source: 'user' | 'flyd';
  timestamp: number;
}

interface MachineRecord {
  id: string;
  app: string;
  name: string;
  region: string;
  state: State;
  desired: Desired;
  instance_id: string;
  config: MachineConfig;
  /** The command the image resolved to at create/update time, as Fly pins an image digest. */
  launch: ImageCommand;
  created_at: string;
  updated_at: string;
  events: MachineEventRecord[];
  port: number;
  pid?: number;
  /** Bumped for every process generation, so a stale exit never touches a newer process. */
  gen: number;
  restarts: number;
  lastExitCode?: number | null;
  lease?: LeaseRecord;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly flyStatus?: string,
  ) {
    super(message);
  }
  body() {
    return { error: this.message, ...(this.flyStatus ? { status: this.flyStatus } : {}) };
  }
}

const persistentStates: State[] = ['created', 'started', 'stopped', 'suspended', 'failed', 'destroyed'];
const waitStates = ['started', 'stopped', 'suspended', 'destroyed', 'failed', 'settled'];
const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID, the shape of Fly's version and event ids. */
function ulid(): string {
  let time = Date.now();
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = crockford[time % 32] + out;
    time = Math.floor(time / 32);
  }
  for (const byte of randomBytes(16)) out += crockford[byte % 32];
  return out;
}

function imageRef(image: string, launch: ImageCommand) {
  const match = /^(?:([^/]+\.[^/]+)\/)?([^:@]+)(?::([^@]+))?$/.exec(image);
  return {
    registry: match?.[1] ?? 'docker.io',
    repository: match?.[2] ?? image,
    tag: match?.[3] ?? 'latest',
    digest: `sha256:${createHash('sha256').update(JSON.stringify(launch)).digest('hex')}`,
    labels: {},
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value * 1000;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

function bool(v: unknown): boolean {
  return v === true || v === 'true' || v === '1';
}

export async function createFlyLocal(options: FlyLocalOptions): Promise<FlyLocal> {
  const dataDir = path.resolve(options.dataDir ?? path.join(REPO_ROOT, '.data', 'fly-local'));
  const logDir = path.join(dataDir, 'machines');
  mkdirSync(logDir, { recursive: true });
  const journal = new StateJournal<MachineRecord>(dataDir, { fsync: options.fsync });
  const images: ImageRegistry = { ...defaultImageRegistry(), ...options.imageRegistry };
  const faults = new FaultInjector(options.faults);
  const limiter = options.rateLimit ? new RateLimiter() : undefined;
  const defaultRegion = options.defaultRegion ?? 'local';
  const stopTimeoutMs = options.stopTimeoutMs ?? 5000;
  const maxRestarts = options.maxRestarts ?? 3;
  const owner = 'fly-local@localhost';

  const machines = new Map<string, MachineRecord>();
  const listeners = new Map<string, Set<() => void>>();
  /** By pid: whoever waits for a process to be gone, whatever generation it belonged to. */
  const exitWaiters = new Map<number, Set<() => void>>();
  const queues = new Map<string, Promise<void>>();
  const pollers = new Map<string, NodeJS.Timeout>();
  const hanging = new Set<() => void>();
  let closed = false;
  /** Set once close() has written the final state: a later exit of a left-running process must not overwrite
   * the file a new fly-local instance now owns. */
  let frozen = false;

  const app = Fastify({ logger: options.logger ?? false, forceCloseConnections: true });
  const log = app.log;

  // ---- persistence ----------------------------------------------------------------------------------
  /** Appends the machine's new version to the journal (one line; see journal.ts). */
  function persist(m: MachineRecord): void {
    if (frozen) return;
    journal.put(m, () => machines.values(), machines.size);
  }

  /** The whole state as a new snapshot; the journal starts empty. */
  function persistAll(): void {
    if (frozen) return;
    journal.compact(machines.values());
  }

  function load(): void {
    const { records, skipped } = journal.load();
    if (skipped) log.warn({ skipped }, 'skipped unreadable state journal lines (a write cut short by a crash)');
    // Destroyed machines stay listable (include_deleted) for a day, then are forgotten, so the state stays small.
    const forgetBefore = new Date(Date.now() - 24 * 3600_000).toISOString();
    for (const m of records) {
      if (m.state !== 'destroyed' || m.updated_at > forgetBefore) machines.set(m.id, m);
    }
  }

  // ---- state ----------------------------------------------------------------------------------------
  const logFile = (id: string) => path.join(logDir, `${id}.log`);

  function addEvent(m: MachineRecord, type: string, status: string, source: 'user' | 'flyd' = 'flyd'): void {
    m.events.push({ id: ulid(), type, status, source, timestamp: Date.now() });
    if (m.events.length > 20) m.events.splice(0, m.events.length - 20);
  }

  function setState(m: MachineRecord, state: State): void {
    if (m.state !== state) log.info({ machine: m.id, from: m.state, to: state }, 'machine state');
    m.state = state;
    m.updated_at = new Date().toISOString();
    persist(m);
    for (const notify of listeners.get(m.id) ?? []) notify();
  }

  /** Process actions on one machine run one after the other; each re-checks `desired` when it runs. */
  function enqueue(m: MachineRecord, action: () => Promise<void>): void {
    const previous = queues.get(m.id) ?? Promise.resolve();
    const next = previous
      .then(action)
      .catch((err: unknown) => log.error({ err, machine: m.id }, 'machine action failed'));
    queues.set(m.id, next);
  }

  function view(m: MachineRecord, summary = false): Machine {
    const base: Machine = {
      id: m.id,
      name: m.name,
      state: m.state,
      region: m.region,
      instance_id: m.instance_id,
      // Locally every machine is a process on loopback; its port is in config.metadata.fly_local_port.
      private_ip: options.privateIp ?? '127.0.0.1',
      image_ref: imageRef(m.config.image ?? '', m.launch),
      created_at: m.created_at,
      updated_at: m.updated_at,
    };
    if (summary) return base;
    return {
      ...base,
      config: { ...m.config, metadata: { ...m.config.metadata, [FLY_LOCAL_PORT_METADATA_KEY]: String(m.port) } },
      events: [...m.events].reverse(), // newest first, as Fly lists them
      checks: [],
      host_status: 'ok',
    };
  }

  const leaseActive = (m: MachineRecord) => (m.lease && m.lease.expiresAtMs > Date.now() ? m.lease : undefined);
  const leaseBody = (l: LeaseRecord) => ({
    nonce: l.nonce,
    expires_at: Math.floor(l.expiresAtMs / 1000),
    owner: l.owner,
    description: l.description,
    version: l.version,
  });

  // ---- processes ------------------------------------------------------------------------------------
  function watchAdopted(m: MachineRecord): void {
    const gen = m.gen;
    const pid = m.pid;
    if (pid === undefined) return;
    const timer = setInterval(() => {
      if (!isAlive(pid)) {
        clearInterval(timer);
        pollers.delete(m.id);
        // Not our child: its exit code is lost; counted as a crash (the usual reason a machine dies).
        onExit(m, gen, pid, null);
      }
    }, 250);
    timer.unref();
    pollers.set(m.id, timer);
  }

  async function launch(m: MachineRecord, reason: string): Promise<void> {
    if (closed || m.desired !== 'started') return;
    setState(m, 'starting');
    m.port = await freePort(m.port);
    if (closed || m.desired !== 'started') return; // stopped or destroyed while we looked for a port
    // Never two processes for one machine (a restart racing an update or a start).
    if (m.pid !== undefined) await killProcess(m, 'SIGKILL', 0);
    const gen = ++m.gen;
    const env: Record<string, string> = {
      ...m.config.env,
      PORT: String(m.port),
      FLY_MACHINE_ID: m.id,
      FLY_APP_NAME: m.app,
      FLY_REGION: m.region,
      FLY_PRIVATE_IP: options.privateIp ?? '127.0.0.1',
      FLY_MACHINE_VERSION: m.instance_id,
      FLY_IMAGE_REF: m.config.image ?? '',
    };
    const startedAt = Date.now();
    let exited = false;
    const child = spawnMachineProcess(m.launch, env, logFile(m.id));
    const exit = (code: number | null) => {
      if (exited) return;
      exited = true;
      if (Date.now() - startedAt > 10_000) m.restarts = 0; // it ran for a while: not a crash loop
      onExit(m, gen, child.pid, code);
    };
    child.once('exit', (code) => exit(code));
    child.once('error', (err) => {
      writeFileSync(logFile(m.id), `fly-local: cannot start ${m.launch.command}: ${err.message}\n`, { flag: 'a' });
      exit(127);
    });
    m.pid = child.pid;
    addEvent(m, 'launch', reason === 'create' ? 'created' : 'started', reason === 'restart' ? 'flyd' : 'user');
    log.info({ machine: m.id, pid: child.pid, port: m.port, reason }, 'machine process started');
    const boot = faults.bootDelayMs(reason === 'create' ? 'create' : reason === 'update' ? 'update' : 'start');
    // A slow boot ends early when the machine is stopped or destroyed meanwhile (the queue waits on it).
    for (const until = Date.now() + boot; Date.now() < until && m.desired === 'started' && !closed;) {
      await sleep(Math.min(50, until - Date.now()));
    }
    if (m.gen === gen && !exited && m.state === 'starting') setState(m, 'started');
  }

  function onExit(m: MachineRecord, gen: number, pid: number | undefined, code: number | null): void {
    if (pid !== undefined) {
      for (const done of exitWaiters.get(pid) ?? []) done();
      exitWaiters.delete(pid);
    }
    if (pid !== undefined && m.pid === pid) m.lastExitCode = code;
    // killProcess bumps the generation first: an exit it caused is expected, not a crash.
    if (m.gen !== gen) return;
    m.pid = undefined;
    if (closed || m.desired !== 'started') {
      persist(m);
      return; // a requested stop/destroy/update finishes in its own action
    }
    addEvent(m, 'exit', code === 0 ? 'stopped' : 'failed');
    log.warn({ machine: m.id, code }, 'machine process exited');
    if (m.config.auto_destroy) {
      m.desired = 'destroyed';
      setState(m, 'destroyed');
      return;
    }
    const policy = m.config.restart?.policy ?? 'on-failure';
    const limit = policy === 'on-failure' ? (m.config.restart?.max_retries ?? maxRestarts) : maxRestarts;
    const wantsRestart = policy === 'always' || (policy === 'on-failure' && code !== 0);
    if (wantsRestart && m.restarts < limit) {
      m.restarts += 1;
      setState(m, 'starting');
      enqueue(m, async () => {
        await sleep(100 * m.restarts);
        await launch(m, 'restart');
      });
      return;
    }
    m.desired = 'stopped';
    setState(m, code === 0 ? 'stopped' : 'failed');
  }

  /** Signals the process group and waits for the exit; SIGKILL after the grace period. */
  async function killProcess(m: MachineRecord, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const pid = m.pid;
    if (pid === undefined || !isAlive(pid)) {
      m.pid = undefined;
      return;
    }
    const exited = new Promise<void>((resolve) => {
      const set = exitWaiters.get(pid) ?? new Set();
      set.add(resolve);
      exitWaiters.set(pid, set);
    });
    m.gen += 1;
    signalGroup(pid, 'SIGCONT'); // a suspended process cannot handle its stop signal
    signalGroup(pid, signal);
    const inTime = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!inTime) signalGroup(pid, 'SIGKILL');
    // The leader is gone; anything left in its group (npx's grandchildren) goes too.
    signalGroup(pid, 'SIGKILL');
    const deadline = Date.now() + 2000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(20);
    exitWaiters.delete(pid);
    m.pid = undefined;
  }

  function recover(): void {
    // A process spawned just before a crash has no recorded pid yet: find it by its FLY_MACHINE_ID.
    const unknown = [...machines.values()].filter(
      (m) => m.state !== 'destroyed' && !(m.pid !== undefined && isAlive(m.pid)),
    );
    const found = unknown.length ? findMachineProcesses(new Set(unknown.map((m) => m.id))) : new Map<string, number>();
    for (const m of unknown) {
      const pid = found.get(m.id);
      if (pid !== undefined) m.pid = pid;
    }
    for (const m of machines.values()) {
      if (m.state === 'destroyed') continue;
      m.gen += 1;
      if (m.pid !== undefined && isAlive(m.pid)) {
        log.info({ machine: m.id, pid: m.pid }, 'adopting running machine');
        watchAdopted(m);
        if (m.state === 'starting' || m.state === 'updating') m.state = m.desired === 'started' ? 'started' : m.state;
        if (m.state === 'suspending') m.state = 'suspended';
        if (m.state === 'stopping' || m.state === 'destroying' || m.desired === 'stopped') {
          const final: State = m.state === 'destroying' ? 'destroyed' : 'stopped';
          enqueue(m, async () => {
            await killProcess(m, 'SIGKILL', 0);
            setState(m, final);
          });
        }
        continue;
      }
      m.pid = undefined;
      if (m.state === 'destroying') m.state = 'destroyed';
      else if (m.desired === 'started' && m.config.restart?.policy !== 'no') enqueue(m, () => launch(m, 'restart'));
      else if (m.state !== 'created' && m.state !== 'failed') m.state = 'stopped';
    }
    persistAll(); // replayed state becomes the snapshot; a torn journal line is gone from here on
  }

  // ---- request plumbing -----------------------------------------------------------------------------
  type Params = { app_name: string; machine_id: string; key: string };
  type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | string[]>; Body: unknown }>;
  type Result = { status: number; body?: unknown };

  function machineOf(req: Req, { allowDestroyed = false } = {}): MachineRecord {
    const m = machines.get(req.params.machine_id);
    if (!m || m.app !== req.params.app_name) throw new HttpError(404, 'machine not found');
    if (!allowDestroyed && m.state === 'destroyed') throw new HttpError(404, 'machine not found');
    return m;
  }

  function requireLease(m: MachineRecord, req: Req): void {
    const lease = leaseActive(m);
    if (lease && req.headers['fly-machine-lease-nonce'] !== lease.nonce) {
      throw new HttpError(
        409,
        `lease currently held by ${lease.owner}, expires at ${new Date(lease.expiresAtMs).toISOString()}`,
      );
    }
  }

  function body(req: Req): Record<string, unknown> {
    const b = req.body;
    if (b === undefined || b === null) return {};
    if (typeof b !== 'object' || Array.isArray(b))
      throw new HttpError(400, 'invalid_argument: body must be a JSON object');
    return b as Record<string, unknown>;
  }

  function handle(op: FaultOp, fn: (req: Req) => Result | Promise<Result>) {
    return async (req: Req, reply: FastifyReply) => {
      const auth = req.headers.authorization ?? '';
      const [scheme, credential] = auth.split(' ');
      if (!['Bearer', 'FlyV1'].includes(scheme ?? '') || credential !== options.token) {
        throw new HttpError(401, 'unauthorized');
      }
      const region = op === 'create' ? (body(req).region as string | undefined) : undefined;
      const fault = faults.decide(op, region);
      if (fault.latencyMs) await sleep(fault.latencyMs);
      if (fault.hang) {
        await new Promise<void>((resolve) => hanging.add(resolve));
        return reply;
      }
      if (fault.error && !fault.afterEffect)
        throw new HttpError(fault.error.status, fault.error.message, fault.error.flyStatus);
      if (limiter && !limiter.take(op, req.params.machine_id ?? req.params.app_name)) {
        throw new HttpError(429, 'rate limit exceeded');
      }
      const result = await fn(req);
      if (fault.error) throw new HttpError(fault.error.status, fault.error.message, fault.error.flyStatus);
      reply.code(result.status);
      return result.body === undefined ? reply.send() : reply.send(result.body);
    };
  }

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, raw, done) => {
    const text = String(raw);
    if (!text.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpError(400, 'invalid_argument: request body is not valid JSON'), undefined);
    }
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('fly-request-id', `01${randomBytes(12).toString('hex').toUpperCase()}-local`);
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    // Like Fly's proxy, a rate-limited answer says when to come back.
    if (err instanceof HttpError && err.status === 429) void reply.header('retry-after', '1');
    if (err instanceof HttpError) return reply.code(err.status).send(err.body());
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err }, 'fly-local internal error');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));

  // ---- Machines API ---------------------------------------------------------------------------------
  const base = '/v1/apps/:app_name/machines';

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
          owner,
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
    handle('get', (req) => ({ status: 200, body: view(machineOf(req, { allowDestroyed: true })) })),
  );

  app.post(
    `${base}/:machine_id`,
    handle('update', (req) => {
      const m = machineOf(req);
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
      const m = machineOf(req);
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

  app.post(
    `${base}/:machine_id/start`,
    handle('start', (req) => {
      const m = machineOf(req);
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
      const m = machineOf(req);
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
      const m = machineOf(req);
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
      const m = machineOf(req, { allowDestroyed: true });
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

  // Leases. Real Fly wraps lease bodies as {status: "success", data}; the spec's Lease is flat. We follow Fly.
  app.post(
    `${base}/:machine_id/lease`,
    handle('lease', (req) => {
      const m = machineOf(req);
      const b = body(req);
      // fly-go sends the TTL as ?ttl=N; the spec puts it in the body. Accept both.
      const ttl = Number(b.ttl ?? req.query.ttl ?? 30);
      if (!Number.isFinite(ttl) || ttl <= 0)
        throw new HttpError(400, 'invalid_argument: ttl must be a positive number of seconds');
      const nonce = req.headers['fly-machine-lease-nonce'];
      const active = leaseActive(m);
      if (active && active.nonce !== nonce) {
        throw new HttpError(
          409,
          `lease currently held by ${active.owner}, expires at ${new Date(active.expiresAtMs).toISOString()}`,
        );
      }
      m.lease = {
        nonce: active?.nonce ?? randomBytes(16).toString('hex'),
        expiresAtMs: Date.now() + ttl * 1000,
        owner,
        description: typeof b.description === 'string' ? b.description : (active?.description ?? ''),
        version: m.instance_id,
      };
      persist(m);
      return { status: 201, body: { status: 'success', data: leaseBody(m.lease) } };
    }),
  );

  app.get(
    `${base}/:machine_id/lease`,
    handle('lease', (req) => {
      const lease = leaseActive(machineOf(req));
      if (!lease) throw new HttpError(404, 'lease not found');
      return { status: 200, body: { status: 'success', data: leaseBody(lease) } };
    }),
  );

  app.delete(
    `${base}/:machine_id/lease`,
    handle('lease', (req) => {
      const m = machineOf(req);
      const nonce = req.headers['fly-machine-lease-nonce'];
      if (!nonce) throw new HttpError(400, 'invalid_argument: fly-machine-lease-nonce header is required');
      const lease = leaseActive(m);
      if (!lease) throw new HttpError(404, 'lease not found');
      if (lease.nonce !== nonce) throw new HttpError(409, `lease currently held by ${lease.owner}`);
      m.lease = undefined;
      persist(m);
      return { status: 200, body: { status: 'success', data: { ok: true } } };
    }),
  );

  // Metadata: stored in config.metadata, as on Fly.
  app.get(
    `${base}/:machine_id/metadata`,
    handle('metadata', (req) => ({ status: 200, body: { ...machineOf(req).config.metadata } })),
  );

  const updateMetadata = handle('metadata', (req) => {
    const m = machineOf(req);
    requireLease(m, req);
    const b = body(req);
    if (typeof b.machine_version === 'string' && b.machine_version && b.machine_version !== m.instance_id) {
      throw new HttpError(
        412,
        `failed_precondition: machine_version ${b.machine_version} does not match ${m.instance_id}`,
      );
    }
    const changes = b.metadata;
    if (!changes || typeof changes !== 'object') throw new HttpError(400, 'invalid_argument: metadata is required');
    const metadata = { ...m.config.metadata };
    for (const [k, v] of Object.entries(changes as Record<string, unknown>)) {
      if (k === FLY_LOCAL_PORT_METADATA_KEY) continue;
      if (v === null || v === '') delete metadata[k];
      else metadata[k] = String(v);
    }
    m.config = { ...m.config, metadata };
    persist(m);
    return { status: 204 };
  });
  app.put(`${base}/:machine_id/metadata`, updateMetadata);
  app.patch(`${base}/:machine_id/metadata`, updateMetadata);

  app.get(
    `${base}/:machine_id/metadata/:key`,
    handle('metadata', (req) => {
      const value = machineOf(req).config.metadata?.[req.params.key];
      if (value === undefined) throw new HttpError(404, 'metadata key not found');
      return { status: 200, body: { value } };
    }),
  );

  app.post(
    `${base}/:machine_id/metadata/:key`,
    handle('metadata', (req) => {
      const m = machineOf(req);
      requireLease(m, req);
      const value = body(req).value;
      if (typeof value !== 'string') throw new HttpError(400, 'invalid_argument: value must be a string');
      if (req.params.key === FLY_LOCAL_PORT_METADATA_KEY)
        throw new HttpError(400, 'invalid_argument: key is reserved by fly-local');
      m.config = { ...m.config, metadata: { ...m.config.metadata, [req.params.key]: value } };
      persist(m);
      return { status: 204 };
    }),
  );

  app.delete(
    `${base}/:machine_id/metadata/:key`,
    handle('metadata', (req) => {
      const m = machineOf(req);
      requireLease(m, req);
      const metadata = { ...m.config.metadata };
      delete metadata[req.params.key];
      m.config = { ...m.config, metadata };
      persist(m);
      return { status: 204 };
    }),
  );

  // ---- admin (not Fly; dev and tests): the same token as the Machines API ------------------------------
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/admin/')) return;
    const auth = req.headers.authorization ?? '';
    const [scheme, credential] = auth.split(' ');
    if (!['Bearer', 'FlyV1'].includes(scheme ?? '') || credential !== options.token)
      return reply.code(401).send({ error: 'unauthorized: /admin needs Authorization: Bearer <fly-local token>' });
  });
  const info = (m: MachineRecord): FlyLocalMachineInfo => ({
    id: m.id,
    app: m.app,
    name: m.name,
    state: m.state,
    pid: m.pid,
    alive: m.pid !== undefined && isAlive(m.pid),
    port: m.port,
    logFile: logFile(m.id),
    restarts: m.restarts,
    lastExitCode: m.lastExitCode,
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
    await killAll();
    machines.clear();
    faults.set({});
    if (!frozen) journal.reset();
    return reply.code(204).send();
  });

  async function killAll(): Promise<void> {
    await Promise.all(
      [...machines.values()].map(async (m) => {
        m.desired = m.state === 'destroyed' ? 'destroyed' : 'stopped';
        await killProcess(m, 'SIGKILL', 0);
        if (m.state !== 'destroyed') m.state = 'stopped';
      }),
    );
  }

  // ---- start ----------------------------------------------------------------------------------------
  load();
  recover();
  await app.listen({ port: options.port ?? 4280, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 4280);
  const host = options.host ?? '127.0.0.1';

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`,
    port,
    dataDir,
    setFaults: (f) => faults.set(f),
    registerImage: (image, command) => {
      images[image] = command;
    },
    machines: () => [...machines.values()].map(info),
    close: async ({ killMachines = options.killMachinesOnClose ?? true } = {}) => {
      if (closed) return;
      closed = true;
      for (const abort of hanging) abort();
      for (const timer of pollers.values()) clearInterval(timer);
      if (killMachines) await killAll();
      await Promise.allSettled(queues.values());
      persistAll();
      journal.close();
      frozen = true;
      await app.close();
    },
  };
}
