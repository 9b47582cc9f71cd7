import { createHash, randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { components } from '../../fly/fly-api';
import { FLY_LOCAL_PORT_METADATA_KEY } from '../../fly/machines';
import { StateJournal } from './journal';
import type { ImageCommand } from './processes';

/** The machine table: every machine's record, its state changes, its API view, and its persistence (journal.ts). */

export type MachineConfig = components['schemas']['fly.MachineConfig'];
export type Machine = components['schemas']['Machine'];

export type State =
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
export type Desired = 'started' | 'stopped' | 'suspended' | 'destroyed';

export interface LeaseRecord {
  nonce: string;
  expiresAtMs: number;
  owner: string;
  description: string;
  version: string;
}

export interface MachineEventRecord {
  id: string;
  type: string;
  status: string;
  source: 'user' | 'flyd';
  timestamp: number;
}

export interface MachineRecord {
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

/** The owner fly-local writes into every lease. */
export const LEASE_OWNER = 'fly-local@localhost';

const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID, the shape of Fly's version and event ids. */
export function ulid(): string {
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

export function addEvent(m: MachineRecord, type: string, status: string, source: 'user' | 'flyd' = 'flyd'): void {
  m.events.push({ id: ulid(), type, status, source, timestamp: Date.now() });
  if (m.events.length > 20) m.events.splice(0, m.events.length - 20);
}

export const leaseActive = (m: MachineRecord) => (m.lease && m.lease.expiresAtMs > Date.now() ? m.lease : undefined);

export const leaseBody = (l: LeaseRecord) => ({
  nonce: l.nonce,
  expires_at: Math.floor(l.expiresAtMs / 1000),
  owner: l.owner,
  description: l.description,
  version: l.version,
});

export interface MachineTableOptions {
  dataDir: string;
  fsync?: boolean;
  /** The machines' `private_ip`. */
  privateIp: string;
  log: FastifyBaseLogger;
}

export type MachineTable = ReturnType<typeof createMachineTable>;

export function createMachineTable({ dataDir, fsync, privateIp, log }: MachineTableOptions) {
  const journal = new StateJournal<MachineRecord>(dataDir, { fsync });
  const machines = new Map<string, MachineRecord>();
  /** Per machine: whoever waits for its next state change (the `wait` route). */
  const listeners = new Map<string, Set<() => void>>();
  /** Set once close() has written the final state: a later exit of a left-running process must not overwrite
   * the file a new fly-local instance now owns. */
  let frozen = false;

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

  function setState(m: MachineRecord, state: State): void {
    if (m.state !== state) log.info({ machine: m.id, from: m.state, to: state }, 'machine state');
    m.state = state;
    m.updated_at = new Date().toISOString();
    persist(m);
    for (const notify of listeners.get(m.id) ?? []) notify();
  }

  function view(m: MachineRecord, summary = false): Machine {
    const base: Machine = {
      id: m.id,
      name: m.name,
      state: m.state,
      region: m.region,
      instance_id: m.instance_id,
      // Locally every machine is a process on loopback; its port is in config.metadata.fly_local_port.
      private_ip: privateIp,
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

  return {
    machines,
    listeners,
    persist,
    persistAll,
    load,
    setState,
    view,
    /** Journals that everything is forgotten (the caller has emptied `machines`). */
    resetJournal(): void {
      if (!frozen) journal.reset();
    },
    /** The final snapshot; from here on the state files are left alone. */
    close(): void {
      persistAll();
      journal.close();
      frozen = true;
    },
  };
}
