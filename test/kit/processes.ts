import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

/** Resolves when the child has exited (at once if it already has). */
export const exited = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
  });

/**
 * Signals the child's whole process group and waits for the child to exit: `tsx` runs the real
 * program in a child of its own, so killing only the direct child would leave it running. The child
 * must have been spawned `detached: true` (its own group).
 */
export async function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal); // the group is already gone; the child may not be
  }
  await done;
}

function listen(port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A free loopback port; the preferred one when it is still free (a restarted server keeps its port). */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred) {
    try {
      return await listen(preferred);
    } catch {
      // taken: fall through to a fresh one
    }
  }
  return listen(0);
}

/** Runs a TypeScript entry point of this repository (e.g. `worker/main.ts`) through tsx, in a group of its own. */
type Stdio = 'inherit' | 'ignore' | 'pipe' | ('ignore' | 'pipe' | 'inherit' | number)[];

export function spawnTs(entry: string, opts: { env?: NodeJS.ProcessEnv; stdio?: Stdio; args?: string[] } = {}) {
  return spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, '..', '..', entry), ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/** The real worker process (`worker/main.ts`), configured by `env` on top of this process's environment. */
export const spawnWorker = (env: NodeJS.ProcessEnv, stdio?: Stdio) => spawnTs('worker/main.ts', { env, stdio });
