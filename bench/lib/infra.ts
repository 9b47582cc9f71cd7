import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startPostgresCluster, type PostgresCluster } from '../../test/kit/postgres-cluster';
import { machineSearchAttributes } from '../../common/search-attributes';
import { readToolPaths } from '../../common/tools';
import { createTemplate } from '../../test/pg';

let runtimeInstalled = false;
/** Workers log warnings only: a benchmark's stdout is its table. */
export function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Installed already (Jest runs several benchmarks in one process).
  }
}

/**
 * The same real pieces the test harness uses (test/global-setup.ts), for a benchmark run outside Jest:
 * a private Postgres cluster with the migrated template database, and a Temporal dev server. When Jest's
 * global set-up already provides them (the smoke test), they are reused and nothing is started.
 * The dev server's SQLite is in memory: with a file (as `npm start` keeps it, BENCH_TEMPORAL_DB=file) it timed
 * out its own writes ("context deadline exceeded") at 100 concurrent workflow starts on a shared 2-core box.
 */
export async function ensureInfra(opts: { postgres?: boolean; temporal?: boolean } = {}) {
  quietRuntime();
  const tools = readToolPaths();
  let cluster: PostgresCluster | undefined;
  let env: TestWorkflowEnvironment | undefined;
  let tmp: string | undefined;
  if (opts.postgres !== false && !process.env.TEST_PG_ADMIN_URL) {
    if (!tools.postgresBin) throw new Error('no Postgres binaries: run `npm run setup -- --test` first');
    cluster = await startPostgresCluster({ bin: tools.postgresBin, fast: true });
    process.env.TEST_PG_ADMIN_URL = cluster.url;
    await createTemplate(cluster.url);
  }
  if (opts.temporal !== false && !process.env.TEMPORAL_TEST_ADDRESS) {
    tmp = mkdtempSync(join(tmpdir(), 'ce-bench-temporal-'));
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: tools.temporalCli },
        ip: '127.0.0.1',
        searchAttributes: machineSearchAttributes,
        log: { format: 'pretty', level: 'error' },
        ...(process.env.BENCH_TEMPORAL_DB === 'file' ? { dbFilename: join(tmp, 'temporal.sqlite') } : {}),
      },
    });
    process.env.TEMPORAL_TEST_ADDRESS = env.address;
  }
  if (tools.temporalTestServer) process.env.TEMPORAL_TEST_SERVER_PATH ??= tools.temporalTestServer;
  return {
    async close() {
      if (env) {
        await env.teardown();
        delete process.env.TEMPORAL_TEST_ADDRESS;
      }
      if (cluster) {
        cluster.stop({ remove: true });
        delete process.env.TEST_PG_ADMIN_URL;
      }
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * A benchmark script's entry point: when `mod` is the script node was started with, starts what it needs
 * (`ensureInfra`), runs `body` with the load average at start (for the report), closes everything, and
 * exits non-zero on failure. Imported by a test instead, it does nothing.
 */
export function runBenchmark(
  mod: NodeModule,
  opts: Parameters<typeof ensureInfra>[0],
  body: (startLoad: number[]) => Promise<void>,
) {
  if (require.main !== mod) return;
  const startLoad = os.loadavg();
  (async () => {
    const infra = await ensureInfra(opts);
    try {
      await body(startLoad);
    } finally {
      await infra.close();
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
