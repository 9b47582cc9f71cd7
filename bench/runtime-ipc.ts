import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { buildSync } from 'esbuild';

/**
 * The runtime benchmark's child processes and how it talks to them over IPC: the runtime in
 * runtime-host.ts (bundled like the image), the browsers in runtime-clients.ts.
 */

/** The runtime's V8 flags in production (NODE_OPTIONS in machine-runtime/Dockerfile). */
export const RUNTIME_NODE_FLAGS = ['--max-old-space-size=160', '--max-semi-space-size=4'];

/**
 * Forks children of this process (a `.ts` file of bench/ through tsx, a `.js` file as it is), IPC
 * open; `stopAll` asks each to finish (the first one spawned, the host, `stop`; the others `close`)
 * and kills it after 5 s.
 */
export function childProcesses() {
  const children: ChildProcess[] = [];
  return {
    /** `execPath`: what starts node instead of node itself (runtime-cgroup.ts, `forkInto`). */
    spawn(file: string, execArgv: string[], env: Record<string, string> = {}, execPath?: string) {
      const child = fork(file.endsWith('.js') ? file : resolve(__dirname, file), [], {
        execArgv: file.endsWith('.js') ? execArgv : ['--import', 'tsx', ...execArgv],
        env: { ...process.env, ...env },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        ...(execPath ? { execPath } : {}),
      });
      children.push(child);
      return child;
    },
    async stopAll() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise((r) => {
              if (child.exitCode !== null) return r(undefined);
              child.once('exit', r);
              child.send({ type: child === children[0] ? 'stop' : 'close' });
              setTimeout(() => child.kill(), 5_000).unref();
            }),
        ),
      );
    },
  };
}

/** runtime-host.ts bundled the way machine-runtime/Dockerfile bundles main.ts: one file, its packages inside. */
export function bundleHost(): string {
  // Inside node_modules, so the bundle's packages resolve from the repository's node_modules.
  const outfile = resolve(__dirname, '..', 'node_modules', '.cache', 'bench-runtime', `host-${process.pid}.js`);
  buildSync({
    entryPoints: [resolve(__dirname, 'runtime-host.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Sends `type` to a child (unless it is `ready`) and resolves with its first answer of that type;
 * rejects if the child exits first (the budget run's runtime may be OOM-killed).
 */
export function ask<T>(child: ChildProcess, type: string, extra: object = {}): Promise<T> {
  return new Promise<T>((res, rej) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      done();
      res(m as T);
    };
    const exit = (code: number | null, signal: string | null) => {
      done();
      rej(new Error(`the child exited (code ${code}, signal ${signal}) before answering ${type}`));
    };
    const done = () => {
      child.off('message', on);
      child.off('exit', exit);
    };
    child.on('message', on);
    child.once('exit', exit);
    if (child.exitCode !== null || child.signalCode !== null) return exit(child.exitCode, child.signalCode);
    if (type !== 'ready') child.send({ type, ...extra });
  });
}
