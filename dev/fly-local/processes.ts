import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** The local command an image name stands for. */
export interface ImageCommand {
  command: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
}
export type ImageRegistry = Record<string, ImageCommand>;

export const REPO_ROOT = path.resolve(__dirname, '../..');
/** The FLY_MACHINE_IMAGE default in common/config.ts. */
export const RUNTIME_IMAGE = 'registry.fly.io/cloud-execution-runtime:latest';

export function defaultImageRegistry(): ImageRegistry {
  return { [RUNTIME_IMAGE]: { command: 'npx', args: ['tsx', 'machine-runtime/main.ts'], cwd: REPO_ROOT } };
}

const imageCommandSchema = z.union([
  z.array(z.string().min(1)).min(1),
  z.object({
    command: z.string().min(1),
    args: z.array(z.string()).optional(),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
  }),
]);

/** FLY_LOCAL_IMAGES: `{"<image>": ["cmd", "arg", …]}` or `{"<image>": {command, args?, cwd?, env?}}`. */
export function parseImageRegistry(json: string): ImageRegistry {
  const parsed = z.record(z.string(), imageCommandSchema).parse(JSON.parse(json));
  return Object.fromEntries(
    Object.entries(parsed).map(([image, c]) => [
      image,
      Array.isArray(c) ? { command: c[0] as string, args: c.slice(1) } : c,
    ]),
  );
}

/** Host variables a process needs to run at all; nothing else of fly-local's environment leaks in (Fly gives none). */
const inheritedEnv = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'SYSTEMROOT', 'npm_config_cache'];

export function spawnMachineProcess(cmd: ImageCommand, env: Record<string, string>, logFile: string): ChildProcess {
  const base = Object.fromEntries(
    inheritedEnv.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])),
  );
  const fd = openSync(logFile, 'a');
  try {
    // Detached: its own process group, so killing fly-local leaves machines running (as Fly's would),
    // and the whole group (npx → tsx → node) can be signalled at once.
    const child = spawn(cmd.command, cmd.args ?? [], {
      cwd: cmd.cwd ?? REPO_ROOT,
      env: { ...base, ...cmd.env, ...env },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Alive and not a zombie (an adopted process whose new parent has not reaped it yet still answers kill 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs (macOS): kill 0 is all we have
  }
}

/**
 * Machine processes by machine id, found by their environment (`FLY_MACHINE_ID`, which fly-local sets): the
 * process-group leaders among `ids`. A machine spawned in the instant before fly-local was killed, its pid not yet
 * recorded, is found (and re-adopted) this way instead of running on forgotten. Linux only (procfs); elsewhere empty.
 */
export function findMachineProcesses(ids: ReadonlySet<string>): Map<string, number> {
  const found = new Map<string, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[2] !== entry) continue; // a zombie, or not its group's leader
      const id = /(?:^|\0)FLY_MACHINE_ID=([^\0]*)/.exec(readFileSync(`/proc/${entry}/environ`, 'utf8'))?.[1];
      if (id !== undefined && ids.has(id)) found.set(id, Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Signals the machine's process group; false when nothing was there to signal. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** A timer that never keeps fly-local alive by itself. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
