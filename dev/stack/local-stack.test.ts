import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/kit/processes';
import { startLocalStack, type LocalStack } from './local-stack';
import { isListening } from './processes';

jest.setTimeout(300_000);

/**
 * The smoke test of the whole product: the stack exactly as `npm start` runs it (every process real:
 * PGlite, a Temporal dev server, fly-local running the machine runtime, binance-replay, worker, API),
 * on free ports and a throwaway data folder; provision through the API, see it run, stop it.
 */
describe('the local stack (npm start)', () => {
  let stack: LocalStack;
  let dataDir: string;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ce-stack-'));
    for (const name of ['api', 'temporal', 'fly', 'binance', 'db']) ports[name] = await freePort();
    stack = await startLocalStack({
      quiet: process.env.STACK_TEST_VERBOSE !== '1',
      env: {
        LOCAL_DATA_DIR: dataDir,
        PORT: String(ports.api),
        TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
        FLY_API_URL: `http://127.0.0.1:${ports.fly}/v1`,
        BINANCE_WS_URL: `ws://127.0.0.1:${ports.binance}`,
        BINANCE_REPLAY_SPEED: '60',
        API_RATE_LIMIT_MAX: '10000', // this test polls faster than a person would
        LOCAL_DB_PORT: String(ports.db),
        DATABASE_URL: '',
        SUPABASE_JWT_SECRET: '',
        WEBHOOK_SECRET: '',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const api = (path: string, token: string, init: RequestInit = {}) =>
    fetch(`${stack.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
    });

  test('prints working URLs and tokens, provisions the elite user to running, refuses the free user, and stops', async () => {
    expect(stack.dashboardUrl).toBe(`http://127.0.0.1:${ports.api}/`);
    expect(stack.temporalUiUrl).toBe(`http://127.0.0.1:${ports.temporal! + 1000}`);
    expect((await fetch(stack.dashboardUrl)).status).toBe(200);

    expect((await api('/v1/machines', stack.tokens.free, { method: 'POST', body: '{}' })).status).toBe(403);
    const provisioned = await api('/v1/machines', stack.tokens.elite, { method: 'POST', body: '{}' });
    expect(provisioned.status).toBe(202);

    let status: { state: string; machineId: string | null } = { state: 'unknown', machineId: null };
    for (let i = 0; i < 120 && status.state !== 'running'; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      status = (await (await api('/v1/machines/me', stack.tokens.elite)).json()) as typeof status;
      expect(status).toMatchObject({ state: expect.stringMatching(/^(provisioning|starting|running)$/) });
    }
    expect(status.state).toBe('running');

    expect((await api('/v1/machines/me/stop', stack.tokens.elite, { method: 'POST', body: '{}' })).status).toBe(202);
    for (let i = 0; i < 60 && status.state !== 'stopped'; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      status = (await (await api('/v1/machines/me', stack.tokens.elite)).json()) as typeof status;
    }
    expect(status.state).toBe('stopped');
  });

  test('stop() leaves nothing listening', async () => {
    await stack.stop();
    for (const [name, port] of Object.entries(ports))
      expect([name, await isListening('127.0.0.1', port!)]).toEqual([name, false]);
  });
});
