import { open } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { isLoopbackUrl } from '../common/loopback';
import { isFlyLocalUrl } from '../fly/machines';
import { machineWorkflowId } from '../workflows/contract';
import type { CommandOf } from './args';
import { OpsError, type OpsDeps } from './context';
import { checked, flyLocalMachinesSchema } from './schemas';
import { describeWorkflow, flyMachinesOf, queryStatus } from './sources';

/*
 * `logs`: a machine's output. fly-local (FLY_API_URL on this host) writes each machine's stdout and
 * stderr to a file its admin API names: printed from here, and followed with --follow. Real Fly
 * serves logs elsewhere than the Machines API: the `fly logs` command to run is printed instead.
 */

/** How much of the end of a log file is read for its last lines. */
const TAIL_BYTES = 256 * 1024;
const FOLLOW_EVERY_MS = 300;

/** The last `n` lines of `text` (a final newline ends the last line, it does not start another). */
export function lastLines(text: string, n: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.length ? `${lines.slice(-n).join('\n')}\n` : '';
}

/** The `fly logs` command for one machine (flyctl; Fly's log API is not the Machines API). */
export const flyLogsCommand = (app: string, machineId: string, follow: boolean) =>
  `fly logs -a ${app} --machine ${machineId}${follow ? '' : ' --no-tail'}`;

/** The machine to show: the one the workflow or the row names, else the newest live one with the user's tag. */
async function machineOf(userId: string, deps: OpsDeps): Promise<string> {
  const workflowId = machineWorkflowId(userId);
  const running = (await describeWorkflow(deps.temporal, workflowId))?.status === 'RUNNING';
  const { status } = running ? await queryStatus(deps.temporal, workflowId) : { status: null };
  const named = status?.machineId ?? (await deps.store.getMachine(userId))?.machineId ?? null;
  const live = await flyMachinesOf(deps.fly, userId);
  if (named && (live.some((m) => m.id === named) || !live.length)) return named;
  const newest = live.sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''))[0];
  if (!newest?.id)
    throw new OpsError(`no Fly machine for user ${userId}: no workflow or row names one, none is tagged`);
  return newest.id;
}

async function flyLocalLogFile(machineId: string, deps: OpsDeps): Promise<string> {
  const url = new URL('/admin/machines', deps.flyApi.url);
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${deps.flyApi.token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new OpsError(`fly-local ${url.href} answered HTTP ${res.status}`);
  const machines = checked(flyLocalMachinesSchema, await res.json(), `fly-local ${url.href}`);
  const m = machines.find((x) => x.id === machineId);
  if (!m) throw new OpsError(`fly-local knows no machine ${machineId} (forgotten a day after it was destroyed)`);
  return m.logFile;
}

/** Prints the file's last lines, then, when following, what is appended, until `signal` aborts. */
async function printFile(path: string, c: CommandOf<'logs'>, deps: OpsDeps): Promise<void> {
  const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new OpsError(`no log file yet at ${path}`);
    throw err;
  });
  try {
    const read = async (from: number, to: number) => {
      const buf = Buffer.alloc(to - from);
      const { bytesRead } = await file.read(buf, 0, buf.length, from);
      return buf.subarray(0, bytesRead).toString('utf8');
    };
    let pos = (await file.stat()).size;
    const start = Math.max(0, pos - TAIL_BYTES);
    let tail = await read(start, pos);
    if (start > 0) tail = tail.slice(tail.indexOf('\n') + 1); // the first line is cut: drop it
    deps.out(lastLines(tail, c.lines));
    while (c.follow && !deps.signal?.aborted) {
      try {
        await delay(FOLLOW_EVERY_MS, undefined, { signal: deps.signal });
      } catch {
        break; // aborted: Ctrl-C, or the caller is done
      }
      const size = (await file.stat()).size;
      if (size < pos) pos = 0; // truncated: start over
      if (size > pos) {
        deps.out(await read(pos, size));
        pos = size;
      }
    }
  } finally {
    await file.close();
  }
}

export async function logs(c: CommandOf<'logs'>, deps: OpsDeps): Promise<void> {
  const machineId = await machineOf(c.userId, deps);
  if (!isFlyLocalUrl(deps.flyApi.url)) {
    deps.out(
      `Fly serves machine logs outside the Machines API; run (flyctl, logged in to the app's org):\n\n` +
        `  ${flyLogsCommand(deps.fly.app, machineId, c.follow)}\n`,
    );
    return;
  }
  const path = await flyLocalLogFile(machineId, deps);
  if (!isLoopbackUrl(deps.flyApi.url)) {
    // fly-local in another container (docker compose): its files are not on this host.
    deps.out(
      `machine ${machineId}'s log file is ${path} on the fly-local host, e.g.:\n\n` +
        `  docker compose exec fly-local tail -n ${c.lines}${c.follow ? ' -f' : ''} ${path}\n`,
    );
    return;
  }
  await printFile(path, c, deps);
}
