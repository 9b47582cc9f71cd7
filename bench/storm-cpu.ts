import { readFileSync, readdirSync } from 'node:fs';

/** CPU seconds (user + system) used so far by this process and each of its descendants, summed by command name. */
export function cpuByCommand(): Map<string, number> {
  const tick = 100; // USER_HZ on Linux
  const procs: { pid: number; ppid: number; comm: string; cpu: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      procs.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf('(') + 1, close),
        cpu: (Number(fields[11]) + Number(fields[12])) / tick,
      });
    } catch {
      // gone meanwhile
    }
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (mine.has(p.pid) || !mine.has(p.ppid)) continue;
      mine.add(p.pid);
      grew = true;
    }
  }
  const out = new Map<string, number>();
  for (const p of procs) {
    if (!mine.has(p.pid) || p.pid === process.pid) continue;
    out.set(p.comm, (out.get(p.comm) ?? 0) + p.cpu);
  }
  // This process (API, worker, the benchmark's own HTTP client) by thread: main, workflow thread, Rust core, libuv.
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      const name = `bench:${Number(tid) === process.pid ? 'main' : stat.slice(stat.indexOf('(') + 1, close)}`;
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / tick);
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
