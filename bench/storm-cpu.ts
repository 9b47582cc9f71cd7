import { readFileSync, readdirSync } from 'node:fs';
import { round, type Row } from './lib/report';

const TICK = 100; // USER_HZ on Linux

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, seconds. */
  cpu: number;
  /** cutime + cstime: children that exited and were waited for (a Postgres backend after its connection closed). */
  reaped: number;
}

/** Every process on the box now (a snapshot of /proc). */
export type ProcTable = Map<number, Proc>;

function parseStat(stat: string) {
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, close),
    ppid: Number(fields[1]),
    cpu: (Number(fields[11]) + Number(fields[12])) / TICK,
    reaped: (Number(fields[13]) + Number(fields[14])) / TICK,
  };
}

export function readProcs(): ProcTable {
  const procs: ProcTable = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      procs.set(Number(entry), { pid: Number(entry), ...parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8')) });
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

/** `root` and everything under it. */
function tree(procs: ProcTable, root: number): Proc[] {
  const mine = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs.values()) {
      if (mine.has(p.pid) || !mine.has(p.ppid)) continue;
      mine.add(p.pid);
      grew = true;
    }
  }
  return [...mine].map((pid) => procs.get(pid)).filter((p): p is Proc => p !== undefined);
}

/** CPU seconds so far of a process and all its descendants, living or exited and reaped within the tree. */
export function treeCpu(procs: ProcTable, root: number | undefined): number {
  if (root === undefined) return 0;
  return tree(procs, root).reduce((sum, p) => sum + p.cpu + p.reaped, 0);
}

/** CPU seconds so far of this process's descendants named `comm` (the dev server, whose pid the SDK keeps). */
export function descendantsCpu(procs: ProcTable, comm: string): number {
  return tree(procs, process.pid)
    .filter((p) => p.pid !== process.pid && p.comm === comm)
    .reduce((sum, p) => sum + p.cpu + p.reaped, 0);
}

/** This process alone (API, worker and the benchmark's own HTTP client), without its children. */
export const selfCpu = (procs: ProcTable) => procs.get(process.pid)?.cpu ?? 0;

/** CPU seconds used so far by this process's threads and each of its descendants, summed by name (the log line). */
export function cpuByCommand(): Map<string, number> {
  const procs = readProcs();
  const out = new Map<string, number>();
  for (const p of tree(procs, process.pid)) {
    if (p.pid === process.pid) continue;
    out.set(p.comm, (out.get(p.comm) ?? 0) + p.cpu);
  }
  // This process by thread: main, workflow thread, Rust core, libuv.
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const t = parseStat(readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8'));
      const name = `bench:${Number(tid) === process.pid ? 'main' : t.comm}`;
      out.set(name, (out.get(name) ?? 0) + t.cpu);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** What each command used between two `cpuByCommand()` readings, largest first (the log line). */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after.entries()]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

/** Named CPU readings (component → seconds so far), taken twice around a timed window. */
export type CpuComponents = Record<string, (procs: ProcTable) => number>;

export function cpuWindow(components: CpuComponents) {
  const read = () => {
    const procs = readProcs();
    return Object.fromEntries(Object.entries(components).map(([k, f]) => [k, f(procs)]));
  };
  const start = read();
  return {
    /** Seconds each component used since the window opened. */
    end(): Record<string, number> {
      const stop = read();
      return Object.fromEntries(Object.keys(components).map((k) => [k, stop[k]! - start[k]!]));
    },
  };
}

/**
 * A row's CPU columns: each component, all together, stops per CPU-second (= stops/s per fully busy
 * core) and the cores that 1,000 stops in 10 s take at that rate (if the work spread perfectly).
 */
export function cpuColumns(used: Record<string, number>, detail: Record<string, number>, n: number): Row {
  const all = Object.values(used).reduce((a, b) => a + b, 0);
  return {
    ...Object.fromEntries(Object.entries(used).map(([k, v]) => [`CPU s: ${k}`, round(v, 1)])),
    ...Object.fromEntries(Object.entries(detail).map(([k, v]) => [`CPU s: ${k}`, round(v, 1)])),
    'CPU s: all': round(all, 1),
    'stops / CPU-s (= stops/s per core)': round(n / all, 1),
    'cores for 1,000 in 10 s': round(((all / n) * 1000) / 10, 1),
  };
}
