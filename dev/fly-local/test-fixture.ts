import { createFlyClient, type FlyClient } from '../../fly/client';
import { machineAddress } from '../../fly/machines';
import type { FlyLocal } from './fly-local';
import { ECHO_IMAGE, TEST_APP, TEST_TOKEN, conformance, getEcho, startTestFlyLocal, tempDataDir } from './test-helpers';

/**
 * What the fly-local test files (supervisor, restarts, http) share. Call `flyLocalSuite()` once at the top of a
 * file: it records every response for that file's spec-conformance test and closes what the file started.
 */
export function flyLocalSuite() {
  const spec = conformance();
  const data = tempDataDir();
  const opened: FlyLocal[] = [];

  async function start(options: Parameters<typeof startTestFlyLocal>[0]) {
    const flyLocal = await startTestFlyLocal(options);
    opened.push(flyLocal);
    const fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_TOKEN, app: TEST_APP, fetch: spec.fetch });
    return { flyLocal, fly };
  }

  afterAll(async () => {
    for (const f of opened) await f.close({ killMachines: true });
    data.remove();
  });

  return { spec, data, start };
}

export const info = (flyLocal: FlyLocal, id: string | undefined) => {
  const m = flyLocal.machines().find((x) => x.id === id);
  if (!m) throw new Error(`no machine ${id}`);
  return m;
};

export async function createEcho(fly: FlyClient, extra: Record<string, unknown> = {}) {
  const m = await fly.createMachine({ config: { image: ECHO_IMAGE, ...extra } });
  await fly.waitMachine(m.id as string, { state: 'started', timeoutSeconds: 10 });
  const machine = await fly.getMachine(m.id as string);
  // `started` means launched (as on Fly); wait until the process listens so signal handlers are in place.
  await getEcho(machineAddress(machine, 8080).origin);
  return machine;
}
