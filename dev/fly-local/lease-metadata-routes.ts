import { randomBytes } from 'node:crypto';
import { FLY_LOCAL_PORT_METADATA_KEY } from '../../fly/machines';
import { HttpError, MACHINES_BASE as base, body, machineOf, requireLease, type FlyLocalHttp } from './http';
import { LEASE_OWNER, leaseActive, leaseBody, type MachineTable } from './machine-table';

/** The Machines API's lease routes (`…/lease`) and metadata routes (`…/metadata`, `…/metadata/{key}`). */

export interface LeaseMetadataRoutesOptions {
  http: FlyLocalHttp;
  table: MachineTable;
}

export function registerLeaseMetadataRoutes({ http: { app, handle }, table }: LeaseMetadataRoutesOptions): void {
  const { machines, persist } = table;

  // Leases. Real Fly wraps lease bodies as {status: "success", data}; the spec's Lease is flat. We follow Fly.
  app.post(
    `${base}/:machine_id/lease`,
    handle('lease', (req) => {
      const m = machineOf(machines, req);
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
        owner: LEASE_OWNER,
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
      const lease = leaseActive(machineOf(machines, req));
      if (!lease) throw new HttpError(404, 'lease not found');
      return { status: 200, body: { status: 'success', data: leaseBody(lease) } };
    }),
  );

  app.delete(
    `${base}/:machine_id/lease`,
    handle('lease', (req) => {
      const m = machineOf(machines, req);
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
    handle('metadata', (req) => ({ status: 200, body: { ...machineOf(machines, req).config.metadata } })),
  );

  const updateMetadata = handle('metadata', (req) => {
    const m = machineOf(machines, req);
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
      const value = machineOf(machines, req).config.metadata?.[req.params.key];
      if (value === undefined) throw new HttpError(404, 'metadata key not found');
      return { status: 200, body: { value } };
    }),
  );

  app.post(
    `${base}/:machine_id/metadata/:key`,
    handle('metadata', (req) => {
      const m = machineOf(machines, req);
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
      const m = machineOf(machines, req);
      requireLease(m, req);
      const metadata = { ...m.config.metadata };
      delete metadata[req.params.key];
      m.config = { ...m.config, metadata };
      persist(m);
      return { status: 204 };
    }),
  );
}
