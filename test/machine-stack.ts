import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createFlyClient, type FlyClient } from '../fly/client';
import { createFlyLocal, type FlyLocal } from '../dev/fly-local/fly-local';
import { createTestDatabase, type TestDatabase } from './pg';

export const TEST_JWT_SECRET = 'test-jwt-secret-that-is-at-least-32-chars';
export const TEST_FLY_TOKEN = 'fly-test-token';
export const TEST_IMAGE = 'registry.fly.io/cloud-execution-runtime:test';
export const fakeRuntimePath = resolve(__dirname, 'fixtures/fake-runtime.mjs');

/**
 * The real pieces a machine workflow needs, for one test file: its own Postgres database, a
 * fly-local whose machines are real processes (the small fake runtime), and activities wired to both.
 */
export interface MachineStack {
  db: TestDatabase;
  flyLocal: FlyLocal;
  fly: FlyClient;
  activities: ReturnType<typeof createActivities>;
  close(): Promise<void>;
}

export async function createMachineStack(
  opts: { app?: string; machineEnv?: Record<string, string> } = {},
): Promise<MachineStack> {
  const db = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'ce-fly-'));
  const flyLocal = await createFlyLocal({
    port: 0,
    token: TEST_FLY_TOKEN,
    dataDir,
    imageRegistry: { [TEST_IMAGE]: { command: process.execPath, args: [fakeRuntimePath], env: opts.machineEnv } },
    logger: false,
  });
  const fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_FLY_TOKEN, app: opts.app ?? 'ce-test' });
  const activities = createActivities({
    fly,
    store: db.store,
    image: TEST_IMAGE,
    jwtSecret: TEST_JWT_SECRET,
    // The stand-in runtime (test/fixtures/fake-runtime.mjs) needs no store: machines never get a database URL.
    runtimeEnv: { BINANCE_WS_URL: 'ws://127.0.0.1:9', BINANCE_REST_URL: 'http://127.0.0.1:9' },
    credentialTtlSeconds: 3600,
  });
  return {
    db,
    flyLocal,
    fly,
    activities,
    async close() {
      await flyLocal.close({ killMachines: true });
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Fly machines of a user that are not destroyed. */
export async function liveMachinesOf(fly: FlyClient, userId: string) {
  return (await fly.listMachines({ metadata: { user_id: userId } })).filter((m) => m.state !== 'destroyed');
}

export type { NativeConnection };
