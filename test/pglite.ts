import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { exited, freePort } from './kit/processes';

/** Starts the embedded PGlite server as a separate process, exactly as local mode does. */
export async function startPgliteProcess(opts: { dataDir?: string } = {}) {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(__dirname, '../dev/stack/pglite-server.ts')],
    {
      env: { ...process.env, PGLITE_PORT: String(port), PGLITE_DATA_DIR: opts.dataDir ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const url = await new Promise<string>((ok, fail) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /pglite ready (\S+)/.exec(err);
      if (m?.[1]) ok(m[1]);
    });
    child.once('exit', (code) => fail(new Error(`pglite server exited with ${code}: ${err}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}
