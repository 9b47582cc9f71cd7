import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFlyLocal, type FlyLocal, type FlyLocalOptions } from './fly-local';
import { isAlive, type ImageCommand } from './processes';
import { createRecorder, loadSpecValidator } from './spec-conformance';

/** Shared by the fly-local and Fly client tests: machine images that are tiny node scripts. */

const echoServer = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ id: process.env.FLY_MACHINE_ID, pid: process.pid, env: process.env }));
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('echo listening on ' + process.env.PORT));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { console.log('got ' + s); process.exit(0); });
`;

export const ECHO_IMAGE = 'test/echo:1';
export const EXIT0_IMAGE = 'test/exit0:1';
export const EXIT1_IMAGE = 'test/exit1:1';

export const testImages: Record<string, ImageCommand> = {
  [ECHO_IMAGE]: { command: process.execPath, args: ['-e', echoServer] },
  [EXIT0_IMAGE]: { command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(0), 100)'] },
  [EXIT1_IMAGE]: { command: process.execPath, args: ['-e', 'setTimeout(() => process.exit(1), 100)'] },
};

export const TEST_TOKEN = 'test-token';
export const TEST_APP = 'test-app';

export function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fly-local-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startTestFlyLocal(options: Partial<FlyLocalOptions> & { dataDir: string }): Promise<FlyLocal> {
  return createFlyLocal({ port: 0, token: TEST_TOKEN, imageRegistry: testImages, stopTimeoutMs: 2000, ...options });
}

/** GET a machine's echo server, retrying while the process is still coming up. */
export async function getEcho(
  origin: string,
  deadlineMs = 5000,
): Promise<{ id: string; pid: number; env: Record<string, string> }> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${origin}/`);
      return (await res.json()) as { id: string; pid: number; env: Record<string, string> };
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Alive and not a zombie waiting to be reaped. */
export const processAlive = isAlive;

/** Records responses and, at the end of a suite, checks them all against the spec. */
export function conformance() {
  const recorder = createRecorder();
  return {
    ...recorder,
    /** Call from the last test of a file. */
    assertAllConform(): void {
      const validator = loadSpecValidator();
      if (validator.skipped) {
        console.warn(`SKIPPED spec conformance: ${validator.reason}`);
        expect(validator.reason).toContain('not at'); // documents the skip; nothing was validated
        return;
      }
      expect(recorder.recorded.length).toBeGreaterThan(0);
      const problems = recorder.recorded.flatMap((r) => validator.validate(r));
      expect(problems).toEqual([]);
    },
  };
}
