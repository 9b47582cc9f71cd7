import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyServerOptions } from 'fastify';
import { registerAdminRoutes, machineInfo } from './admin-routes';
import { FaultInjector, RateLimiter, type Faults } from './faults';
import { createHttp } from './http';
import { registerLeaseMetadataRoutes } from './lease-metadata-routes';
import { registerLifecycleRoutes } from './lifecycle-routes';
import { createMachineTable } from './machine-table';
import { registerMachinesRoutes } from './machines-routes';
import { REPO_ROOT, defaultImageRegistry, type ImageCommand, type ImageRegistry } from './processes';
import { createSupervisor } from './supervisor';

/**
 * fly-local: the composition. The machine table and its journal (machine-table.ts, journal.ts), the process
 * supervisor (supervisor.ts), the HTTP plumbing with auth and faults (http.ts), the Machines API routes
 * (machines-routes.ts, lifecycle-routes.ts, lease-metadata-routes.ts) and the admin routes (admin-routes.ts).
 */

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

export async function createFlyLocal(options: FlyLocalOptions): Promise<FlyLocal> {
  const dataDir = path.resolve(options.dataDir ?? path.join(REPO_ROOT, '.data', 'fly-local'));
  const logDir = path.join(dataDir, 'machines');
  mkdirSync(logDir, { recursive: true });
  const images: ImageRegistry = { ...defaultImageRegistry(), ...options.imageRegistry };
  const faults = new FaultInjector(options.faults);
  const limiter = options.rateLimit ? new RateLimiter() : undefined;
  const privateIp = options.privateIp ?? '127.0.0.1';
  const stopTimeoutMs = options.stopTimeoutMs ?? 5000;
  let closed = false;

  const http = createHttp({ token: options.token, faults, limiter, logger: options.logger });
  const { app } = http;
  const log = app.log;
  const table = createMachineTable({ dataDir, fsync: options.fsync, privateIp, log });
  const supervisor = createSupervisor({
    table,
    faults,
    log,
    logDir,
    privateIp,
    maxRestarts: options.maxRestarts ?? 3,
    isClosed: () => closed,
  });
  const defaultRegion = options.defaultRegion ?? 'local';
  registerMachinesRoutes({ http, table, supervisor, images, defaultRegion, stopTimeoutMs });
  registerLifecycleRoutes({ http, table, supervisor, stopTimeoutMs });
  registerLeaseMetadataRoutes({ http, table });
  registerAdminRoutes({ http, token: options.token, table, supervisor, faults });

  // ---- start ----------------------------------------------------------------------------------------
  table.load();
  supervisor.recover();
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
    machines: () => [...table.machines.values()].map((m) => machineInfo(m, supervisor.logFile(m.id))),
    close: async ({ killMachines = options.killMachinesOnClose ?? true } = {}) => {
      if (closed) return;
      closed = true;
      for (const abort of http.hanging) abort();
      supervisor.stopPolling();
      if (killMachines) await supervisor.killAll();
      await supervisor.settle();
      table.close();
      await app.close();
    },
  };
}
