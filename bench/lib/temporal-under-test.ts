import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { machineSearchAttributes } from '../../common/search-attributes';
import { readToolPaths } from '../../common/tools';
import { descendantsCpu, treeCpu, type CpuComponents } from '../storm-cpu';
import { envInt } from './report';
import { startTemporalServer } from './temporal-server';

/**
 * Which Temporal a benchmark runs against (BENCH_TEMPORAL, for storm and fleet): the CLI's dev server
 * (one process, SQLite), the multi-service server on Postgres (lib/temporal-server.ts), or both in one
 * run, side by side. Each one sets TEMPORAL_TEST_ADDRESS while it is up, which is what the benchmarks
 * (through test/temporal.ts) connect to.
 */
export type TemporalKind = 'dev' | 'server';

export interface TemporalUnderTest {
  kind: TemporalKind | 'external';
  /** For the results' notes. */
  description: string;
  /** Its processes' CPU readings: the server and, for `server`, its Postgres. */
  cpu: CpuComponents;
  /** Parts of `cpu.Temporal` (one per service when they run as separate processes): shown, not added up. */
  cpuDetail?: CpuComponents;
  close(): Promise<void>;
}

export function temporalKinds(): TemporalKind[] {
  const v = process.env.BENCH_TEMPORAL ?? 'dev';
  if (v === 'both') return ['dev', 'server'];
  if (v === 'dev' || v === 'server') return [v];
  throw new Error(`BENCH_TEMPORAL must be dev, server or both, got "${v}"`);
}

const devCpu: CpuComponents = { Temporal: (procs) => descendantsCpu(procs, 'temporal') };

/**
 * The CLI's dev server, as the tests use it. Its SQLite is in memory: with a file (as `npm start` keeps it,
 * BENCH_TEMPORAL_DB=file) it timed out its own writes ("context deadline exceeded") at 100 concurrent
 * workflow starts on a shared 2-core box.
 */
export async function startDevServer(): Promise<TemporalUnderTest> {
  const tmp = mkdtempSync(join(tmpdir(), 'ce-bench-temporal-'));
  const file = process.env.BENCH_TEMPORAL_DB === 'file';
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: readToolPaths().temporalCli },
      ip: '127.0.0.1',
      searchAttributes: machineSearchAttributes,
      log: { format: 'pretty', level: 'error' },
      ...(file ? { dbFilename: join(tmp, 'temporal.sqlite') } : {}),
    },
  });
  process.env.TEMPORAL_TEST_ADDRESS = env.address;
  return {
    kind: 'dev',
    description: `Temporal CLI dev server (${readToolPaths().temporalCliVersion ?? 'unknown version'}; SQLite ${file ? 'file' : 'in memory'})`,
    cpu: devCpu,
    async close() {
      await env.teardown();
      delete process.env.TEMPORAL_TEST_ADDRESS;
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** The server's knobs, from the environment (bench/README.md lists them). */
export function serverKnobs() {
  return {
    shards: envInt('BENCH_TEMPORAL_SHARDS', 4),
    split: process.env.BENCH_TEMPORAL_SPLIT === '1',
    maxConns: envInt('BENCH_TEMPORAL_MAX_CONNS', 20),
    partitions: process.env.BENCH_TEMPORAL_PARTITIONS ? envInt('BENCH_TEMPORAL_PARTITIONS', 4) : undefined,
    metrics: process.env.BENCH_TEMPORAL_METRICS !== '0',
    pprofPort: process.env.BENCH_TEMPORAL_PPROF ? envInt('BENCH_TEMPORAL_PPROF', 0) : undefined,
    gogc: process.env.BENCH_TEMPORAL_GOGC ? envInt('BENCH_TEMPORAL_GOGC', 100) : undefined,
  };
}

export async function startServer(log?: (m: string) => void): Promise<TemporalUnderTest> {
  const knobs = serverKnobs();
  const s = await startTemporalServer({ ...knobs, log });
  process.env.TEMPORAL_TEST_ADDRESS = s.address;
  const services = Object.entries(s.pids.server);
  const cpu: CpuComponents = {
    Temporal: (procs) => services.reduce((sum, [, pid]) => sum + treeCpu(procs, pid), 0),
    'Temporal Postgres': (procs) => treeCpu(procs, s.pids.postgres),
  };
  const cpuDetail: CpuComponents = {};
  if (services.length > 1) for (const [name, pid] of services) cpuDetail[`Temporal ${name}`] = (p) => treeCpu(p, pid);
  return {
    kind: 'server',
    description:
      `Temporal server ${s.version} (frontend, history, matching, worker ${knobs.split ? 'one process each' : 'in one process'}; ` +
      `${s.shards} history shards; ${knobs.maxConns} connections per service; task-queue partitions ${knobs.partitions ?? 'default (4)'}; metrics ${knobs.metrics ? 'on (Prometheus, tally)' : 'off'}; GOGC ${knobs.gogc ?? 'default'}) ` +
      'on its own Postgres 15 (fsync, synchronous_commit and full_page_writes off: bench only)',
    cpu,
    cpuDetail,
    async close() {
      await s.stop();
      delete process.env.TEMPORAL_TEST_ADDRESS;
    },
  };
}

/** The one given by TEMPORAL_TEST_ADDRESS (the smoke test's, or one the caller runs): its CPU is a dev server's if it is our child. */
export const externalTemporal = (): TemporalUnderTest => ({
  kind: 'external',
  description: `Temporal at TEMPORAL_TEST_ADDRESS=${process.env.TEMPORAL_TEST_ADDRESS}`,
  cpu: devCpu,
  close: async () => undefined,
});

/**
 * Runs `body` against each Temporal of BENCH_TEMPORAL, BENCH_REPEAT times, alternating (dev, server,
 * dev, server…) so a change in the box's load hits both alike. With TEMPORAL_TEST_ADDRESS already set,
 * that server only.
 */
export async function forEachTemporal<T>(
  body: (t: TemporalUnderTest, run: number) => Promise<T>,
  log?: (m: string) => void,
): Promise<T[]> {
  if (process.env.TEMPORAL_TEST_ADDRESS) return [await body(externalTemporal(), 1)];
  const out: T[] = [];
  const repeat = envInt('BENCH_REPEAT', 1);
  for (let run = 1; run <= repeat; run++)
    for (const kind of temporalKinds()) {
      const t = kind === 'dev' ? await startDevServer() : await startServer(log);
      try {
        log?.(`run ${run}/${repeat} against ${t.description}`);
        out.push(await body(t, run));
      } finally {
        await t.close();
      }
    }
  return out;
}
