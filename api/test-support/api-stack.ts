import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError } from '@temporalio/client';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { createActivities } from '../../activities';
import { createBinanceReplay, type BinanceReplay } from '../../dev/binance-replay/server';
import { REPO_ROOT } from '../../dev/fly-local/processes';
import { createMachineStack, TEST_JWT_SECRET, type MachineStack } from '../../test/machine-stack';
import { haveRecordedData, recordedDataDir } from '../../test/kit/data';
import { untilValue } from '../../test/kit/wait';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../../test/temporal';
import type { SubscriptionTier } from '../../store/types';
import { createMachineWorker, workflowsPath } from '../../worker/create-worker';
import { machineWorkflowId, type MachineStatus } from '../../workflows/contract';
import { createApp } from '../app';
import { mintAccessToken } from '../auth';
import { loadApiConfig, type ApiConfig } from '../config';
import { buildRuntimeBundle } from '../../scripts/build-runtime';

export const TEST_WEBHOOK_SECRET = 'whsec-test-secret-0123456789';
/** An image name fly-local maps to the REAL machine runtime (machine-runtime/main.ts). */
export const REAL_RUNTIME_IMAGE = 'registry.fly.io/cloud-execution-runtime:api-test';

export interface ApiStackOptions {
  /** Machines run the real runtime (with /ws), fed by binance-replay when recorded data exists. */
  realRuntime?: boolean;
  /** How machines run the real runtime: from source through tsx (default), or the image's one-file bundle. */
  runtimeBuild?: 'source' | 'bundle';
  /** Extra environment for the real runtime's machines (it wins over the image's, e.g. TRADER_POLL_SECONDS). */
  runtimeEnv?: Record<string, string>;
  /** Extra API environment (on top of fast lifecycle settings and the test secrets). */
  env?: Record<string, string>;
}

/**
 * Everything real for API tests, one per test file: the run's Temporal dev server, this file's own
 * Postgres database, fly-local with machines as real processes, a machine worker on a unique task
 * queue, and the API listening on a free port.
 */
export async function createApiStack(opts: ApiStackOptions = {}) {
  const server = await connectToTestServer();
  const stack: MachineStack = await createMachineStack();
  const taskQueue = uniqueId('api-machines');
  const users: string[] = [];

  let replay: BinanceReplay | undefined;
  const runtimeEnv: Record<string, string> = {};
  let activities = stack.activities;
  if (opts.realRuntime) {
    if (haveRecordedData)
      replay = await createBinanceReplay({
        dataDir: recordedDataDir,
        speed: 60, // one 1m candle closes every second
        startTime: Date.parse('2024-10-03T00:00:00Z'), // two days into the recording: REST has warm-up history
        symbols: ['BTCUSDT'],
      });
    const bundle =
      opts.runtimeBuild === 'bundle'
        ? await buildRuntimeBundle(join(mkdtempSync(join(tmpdir(), 'ce-runtime-')), 'runtime.js'))
        : undefined;
    stack.flyLocal.registerImage(REAL_RUNTIME_IMAGE, {
      command: process.execPath,
      // The bundle runs with the image's V8 flags (machine-runtime/Dockerfile), on plain node.
      args: bundle
        ? ['--max-old-space-size=160', '--max-semi-space-size=4', bundle.file]
        : ['--import', 'tsx', 'machine-runtime/main.ts'],
      cwd: REPO_ROOT,
      env: { HOST: '127.0.0.1', LOG_LEVEL: 'warn', TRADER_POLL_SECONDS: '2' },
    });
    activities = createActivities({
      fly: stack.fly,
      store: stack.db.store,
      image: REAL_RUNTIME_IMAGE,
      jwtSecret: TEST_JWT_SECRET,
      runtimeEnv: Object.assign(runtimeEnv, {
        // Without recorded data the runtime has no traders to feed: it idles (healthy) and still streams.
        BINANCE_WS_URL: replay?.wsUrl ?? 'ws://127.0.0.1:9',
        BINANCE_REST_URL: replay?.restUrl ?? 'http://127.0.0.1:9',
        // MACHINE_API_URL is set once the API listens (below): traders and signals go through it.
        ...opts.runtimeEnv,
      }),
      credentialTtlSeconds: 3600,
    });
  }

  const worker: Worker = await createMachineWorker({
    connection: server.nativeConnection,
    taskQueue,
    activities,
    workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
  });
  const running = worker.run();

  const config: ApiConfig = loadApiConfig({
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    DATABASE_URL: stack.db.url,
    MACHINE_RENEWAL_INTERVAL: '1 hour',
    MACHINE_START_DEADLINE_SECONDS: '30',
    MACHINE_HEALTH_DEADLINE_SECONDS: '60',
    MACHINE_MAX_RESTARTS: '1',
    API_PROVISION_COOLDOWN: '0 seconds', // tests stop and start again at once; the cooldown has its own test
    ...(replay ? { BINANCE_REST_URL: replay.restUrl } : {}), // POST /v1/traders/preview reads the recording
    ...opts.env,
  });
  const apps: FastifyInstance[] = [];

  /** Another API instance on the same stack (e.g. with a different environment). */
  async function startApp(env: Record<string, string> = {}) {
    const app = await createApp({
      config: loadApiConfig({ ...configEnv(config), ...env }),
      temporal: server.client,
      store: stack.db.store,
      fly: stack.fly,
      taskQueue,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    apps.push(app);
    const port = (app.server.address() as AddressInfo).port;
    return { app, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` };
  }
  const main = await startApp();
  // Machines are created later (on provision) and read this object then: no database URL, ever.
  runtimeEnv.MACHINE_API_URL = main.url;

  const api = {
    ...main,
    server,
    stack,
    replay,
    taskQueue,
    config,
    startApp,

    async createUser(tier: SubscriptionTier = 'elite') {
      const id = await stack.db.createUser(tier);
      users.push(id);
      return id;
    },

    token: (
      userId: string,
      o: { ttlSeconds?: number; audience?: string; secret?: string; claims?: Record<string, unknown> } = {},
    ) =>
      mintAccessToken({
        jwtSecret: o.secret ?? TEST_JWT_SECRET,
        userId,
        ttlSeconds: o.ttlSeconds,
        audience: o.audience,
        claims: o.claims,
      }),

    /** fetch against the API with a bearer token and a JSON body. */
    async call(
      method: string,
      path: string,
      o: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; base?: string } = {},
    ) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined = o.rawBody;
      if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const res = await fetch(`${o.base ?? main.url}${path}`, { method, headers, body });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, json: json as Record<string, unknown>, text };
    },

    /** Polls GET /v1/machines/me until `predicate` holds. */
    async waitForStatus(token: string, predicate: (s: MachineStatus) => boolean, timeoutMs = 60_000) {
      const { json } = await untilValue(
        'GET /v1/machines/me to match',
        async () => {
          const res = await api.call('GET', '/v1/machines/me', { token });
          return {
            status: res.status,
            json: res.json as unknown as MachineStatus & { source: string; workflowId: string },
          };
        },
        (res) => res.status === 200 && predicate(res.json),
        { timeoutMs, everyMs: 150 },
      );
      return json;
    },

    /** A new elite user whose machine is running (provisioned through the API). */
    async runningUser() {
      const userId = await api.createUser('elite');
      const token = await api.token(userId);
      const provisioned = await api.call('POST', '/v1/machines', { token });
      if (provisioned.status !== 202) throw new Error(`provision: HTTP ${provisioned.status} ${provisioned.text}`);
      const status = await api.waitForStatus(token, (s) => s.state === 'running');
      return { userId, token, status };
    },

    async close() {
      for (const app of apps) await app.close();
      // Leave nothing running on the shared dev server: every user's workflow of this file ends here.
      await Promise.all(
        users.map(async (userId) => {
          try {
            await server.client.workflow.getHandle(machineWorkflowId(userId)).terminate('test finished');
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          }
        }),
      );
      worker.shutdown();
      await running;
      await stack.close();
      await replay?.close();
      await server.close();
    },
  };
  return api;
}
export type ApiStack = Awaited<ReturnType<typeof createApiStack>>;

/** The config back as environment strings, so an override goes through the same parser. */
function configEnv(config: ApiConfig): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
  );
}
