import { createHealthActivities } from './health-activities';
import { createMachineActivities, RUNTIME_PORT } from './machine-activities';
import { machineAddress } from '../fly/machines';
import { REPO_ROOT } from '../dev/fly-local/processes';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createApp } from '../api/app';
import { loadApiConfig } from '../api/config';
import { createMachineStack, TEST_JWT_SECRET, type MachineStack } from '../test/machine-stack';
import { connectToTestServer } from '../test/temporal';

jest.setTimeout(90_000);

const REAL_RUNTIME = 'registry.fly.io/cloud-execution-runtime:health-probe-test';

/**
 * The worker's health probe against the REAL runtime on fly-local, configured as the worker
 * configures it. Binance is unreachable (port 9), so the runtime is unhealthy with a reason; the
 * probe must still learn that reason although /health answers only `{ ok }` without a token.
 */
// The one machine-runtime test that needs Postgres (the runtime's store): skipped, saying so, when
// Jest runs without the repo's global setup.
const havePostgres = !!process.env.TEST_PG_ADMIN_URL;

describe('health probe → real runtime', () => {
  let stack: MachineStack;
  let machineId: string;
  let origin: string;
  let activities: ReturnType<typeof createMachineActivities> & ReturnType<typeof createHealthActivities>;
  let server: Awaited<ReturnType<typeof connectToTestServer>> | undefined;
  let app: FastifyInstance | undefined;

  beforeAll(async () => {
    if (!havePostgres) return console.warn('SKIPPED: the health-probe test needs Postgres (Jest global setup)');
    stack = await createMachineStack();
    stack.flyLocal.registerImage(REAL_RUNTIME, {
      command: process.execPath,
      args: ['--import', 'tsx', 'machine-runtime/main.ts'],
      cwd: REPO_ROOT,
      env: { HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    });
    // The API's machine routes are the runtime's store (a machine never gets a database URL).
    server = await connectToTestServer();
    app = await createApp({
      config: loadApiConfig({ SUPABASE_JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: stack.db.url }),
      temporal: server.client,
      store: stack.db.store,
      fly: stack.fly,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const apiUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const deps = {
      fly: stack.fly,
      image: REAL_RUNTIME,
      jwtSecret: TEST_JWT_SECRET,
      runtimeEnv: {
        BINANCE_WS_URL: 'ws://127.0.0.1:9',
        BINANCE_REST_URL: 'http://127.0.0.1:9',
        MACHINE_API_URL: apiUrl,
      },
      credentialTtlSeconds: 3600,
    };
    activities = {
      ...createMachineActivities(deps),
      ...createHealthActivities({ ...deps, runtimePort: RUNTIME_PORT }),
    };
    const userId = await stack.db.createUser('elite');
    await stack.db.pool.query('insert into public.traders (user_id, name, definition) values ($1, $2, $3)', [
      userId,
      'rsi',
      { symbols: ['BTCUSDT'], interval: '5m', filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] } },
    ]);
    const machine = await activities.ensureFlyMachine({
      userId,
      workflowId: 'health-probe-test',
      regions: ['local'],
      cpuPriority: 'low',
    });
    machineId = machine.id;
    await activities.waitForFlyState({ machineId, state: 'started', deadlineSeconds: 30 });
    origin = machineAddress(await stack.fly.getMachine(machineId), 8080).origin;
  });
  afterAll(async () => {
    await app?.close();
    await server?.close();
    await stack?.close();
  });

  test('without a token /health says only { ok: false }; the probe reports why', async () => {
    if (!havePostgres) return;
    let report = await activities.checkRuntimeHealth({ machineId });
    const deadline = Date.now() + 30_000;
    // Until the runtime listens the probe says "no answer"; then the runtime's own reasons.
    while (!/feed disconnected/.test(report.reason ?? '') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      report = await activities.checkRuntimeHealth({ machineId });
    }
    expect(report).toMatchObject({ ok: false, reason: expect.stringContaining('feed disconnected') });

    const anonymous = await fetch(`${origin}/health`);
    expect(anonymous.status).toBe(503);
    expect(await anonymous.json()).toEqual({ ok: false });
  });
});
