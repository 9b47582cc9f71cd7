import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The budget run's cgroup (v1): the runtime process under a CPU quota (`cpu.cfs_quota_us` per
 * `cpu.cfs_period_us`, Fly's shared-cpu-1x baseline is 1/16 of a core) and a memory limit that it
 * cannot swap past (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` where swap is
 * accounted). Created under the mounted `cpu` and `memory` hierarchies, one directory each, removed
 * again once the process is gone.
 */
export interface CgroupLimits {
  /** Cores: quota ÷ period (0.0625 = 1/16). */
  cpuFraction: number;
  periodUs: number;
  memoryBytes: number;
}

/** Where the cgroup v1 `cpu` and `memory` controllers are mounted; throws a sentence saying what is missing. */
export function cgroupV1Mounts(): { cpu: string; memory: string } {
  if (process.getuid?.() !== 0)
    throw new Error(
      'The budget run (BENCH_RUNTIME_BUDGET) must run as root: it creates cgroups under /sys/fs/cgroup to cap the runtime at a fraction of a core and 256 MB.',
    );
  const found: Record<string, string> = {};
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, dir, type, options] = line.split(' ');
    if (type !== 'cgroup' || !dir || !options) continue;
    for (const c of options.split(',')) if ((c === 'cpu' || c === 'memory') && !found[c]) found[c] = dir;
  }
  const missing = ['cpu', 'memory'].filter((c) => !found[c] || !existsSync(join(found[c]!, 'cgroup.procs')));
  if (missing.length > 0)
    throw new Error(
      `The budget run needs the cgroup v1 ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''} mounted (none in /proc/mounts); ` +
        'on a cgroup v2-only machine (cpu.max, memory.max) it is not supported.',
    );
  return { cpu: found.cpu!, memory: found.memory! };
}

const readKeyValues = (file: string): Record<string, number> =>
  Object.fromEntries(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k!, Number(v)]),
  );
const readNumber = (file: string) => Number(readFileSync(file, 'utf8').trim());

export type Cgroup = ReturnType<typeof createCgroup>;

/** Creates `<name>` under both controllers with `limits`; `remove()` (also on exit) takes it down again. */
export function createCgroup(name: string, limits: CgroupLimits) {
  const mounts = cgroupV1Mounts();
  const cpu = join(mounts.cpu, name);
  const memory = join(mounts.memory, name);
  const quotaUs = Math.max(1000, Math.round(limits.cpuFraction * limits.periodUs));
  const remove = () => {
    for (const dir of [cpu, memory]) {
      if (!existsSync(dir)) continue;
      // A cgroup goes only once it is empty: the process may take a moment to be reaped.
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if (attempt >= 50) throw new Error(`could not remove cgroup ${dir}: ${(err as Error).message}`);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
    }
  };
  mkdirSync(cpu);
  process.once('exit', () => {
    try {
      remove();
    } catch {
      // reported by the caller's own remove(); nothing more to do on the way out
    }
  });
  mkdirSync(memory);
  writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(limits.periodUs));
  writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(quotaUs));
  // memsw (memory + swap) must stay ≥ the memory limit: the limit first, then memsw to the same.
  writeFileSync(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
  const memsw = existsSync(join(memory, 'memory.memsw.limit_in_bytes'));
  if (memsw) writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
  return {
    name,
    quotaUs,
    periodUs: limits.periodUs,
    memsw,
    /** The `cgroup.procs` files a process enters by writing its pid into them. */
    procsFiles: [join(cpu, 'cgroup.procs'), join(memory, 'cgroup.procs')],
    /** `cpu.stat`: periods, throttled periods, throttled time (ns). */
    cpuStat: () => {
      const s = readKeyValues(join(cpu, 'cpu.stat'));
      return { periods: s.nr_periods ?? 0, throttled: s.nr_throttled ?? 0, throttledNs: s.throttled_time ?? 0 };
    },
    memory: () => {
      const oom = readKeyValues(join(memory, 'memory.oom_control'));
      return {
        usage: readNumber(join(memory, 'memory.usage_in_bytes')),
        maxUsage: readNumber(join(memory, 'memory.max_usage_in_bytes')),
        memswMaxUsage: memsw ? readNumber(join(memory, 'memory.memsw.max_usage_in_bytes')) : undefined,
        failcnt: readNumber(join(memory, 'memory.failcnt')),
        underOom: oom.under_oom ?? 0,
        /** Processes the OOM killer killed in this cgroup (kernels from 4.13 report it). */
        oomKills: oom.oom_kill,
      };
    },
    remove,
  };
}

/**
 * `fork` options that start a node child inside the cgroup before node itself starts: `sh` writes
 * its own pid into each `cgroup.procs`, then `exec`s node (same pid, IPC channel inherited), so its
 * start, the bundle's load and the warm-up all run under the budget too, as on the machine.
 */
export function forkInto(cg: Cgroup, nodeFlags: string[]): { execPath: string; execArgv: string[] } {
  const enter = cg.procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
  return { execPath: '/bin/sh', execArgv: ['-c', `${enter} && exec "$0" "$@"`, process.execPath, ...nodeFlags] };
}
