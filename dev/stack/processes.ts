import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { killGroup } from '../../test/kit/processes';
import { until } from '../../test/kit/wait';

/**
 * The small process supervisor behind `npm start`: starts each service, prefixes its output, waits
 * until it is ready, and on Ctrl-C stops everything it started (and nothing else).
 */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

const colours = [36, 35, 33, 32, 34, 31, 96, 95];
let nextColour = 0;

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; quiet?: boolean; onLine?: (line: string) => void } = {},
): ManagedProcess {
  const colour = colours[nextColour++ % colours.length];
  const prefix = process.stdout.isTTY ? `\x1b[${colour}m${name.padEnd(14)}\x1b[0m│ ` : `${name.padEnd(14)}│ `;
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so stop() reaches its children too
  });
  const relay = (data: Buffer) => {
    for (const line of data.toString().split('\n')) {
      if (!line.trim()) continue;
      opts.onLine?.(line);
      if (!opts.quiet) process.stdout.write(prefix + line + '\n');
    }
  };
  child.stdout?.on('data', relay);
  child.stderr?.on('data', relay);
  return {
    name,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null || !child.pid) return resolve();
        const force = setTimeout(() => void killGroup(child, 'SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        void killGroup(child, 'SIGTERM');
      }),
  };
}

/** True when something accepts TCP connections at host:port. */
export function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls `check` until it is true; fails at once if `proc` exits first, saying so. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs?: number; proc?: ManagedProcess } = {},
): Promise<void> {
  const { proc } = opts;
  await until(what, check, {
    timeoutMs: opts.timeoutMs ?? 60_000,
    everyMs: 200,
    abortIf: () => {
      if (proc && proc.child.exitCode !== null)
        throw new Error(`${proc.name} exited (code ${proc.child.exitCode}) before ${what}`);
    },
  });
}

export const isLoopback = (host: string) =>
  ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host) || host.startsWith('127.');
