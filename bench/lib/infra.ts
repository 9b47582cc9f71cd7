import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startPostgresCluster, type PostgresCluster } from '../../test/kit/postgres-cluster';
import { readToolPaths } from '../../common/tools';
import { createTemplate } from '../../test/pg';
import { startDevServer, type TemporalUnderTest } from './temporal-under-test';

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

/** The cluster `ensureInfra` started for the product's database, if it did (its Postgres's CPU is counted). */
let appCluster: PostgresCluster | undefined;
export function appPostgresPid(): number | undefined {
  if (!appCluster) return undefined;
  return Number(readFileSync(join(appCluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/**
 * The same real pieces the test harness uses (test/global-setup.ts), for a benchmark run outside Jest:
 * a private Postgres cluster with the migrated template database, and a Temporal dev server
 * (lib/temporal-under-test.ts; storm and fleet start theirs per BENCH_TEMPORAL instead). When Jest's
 * global set-up already provides them (the smoke test), they are reused and nothing is started.
 */
export async function ensureInfra(opts: { postgres?: boolean; temporal?: boolean } = {}) {
  quietRuntime();
  const tools = readToolPaths();
  let cluster: PostgresCluster | undefined;
  let temporal: TemporalUnderTest | undefined;
  if (opts.postgres !== false && !process.env.TEST_PG_ADMIN_URL) {
    if (!tools.postgresBin) throw new Error('no Postgres binaries: run `npm run setup -- --test` first');
    cluster = await startPostgresCluster({ bin: tools.postgresBin, fast: true });
    appCluster = cluster;
    process.env.TEST_PG_ADMIN_URL = cluster.url;
    await createTemplate(cluster.url);
  }
  if (opts.temporal !== false && !process.env.TEMPORAL_TEST_ADDRESS) temporal = await startDevServer();
  if (tools.temporalTestServer) process.env.TEMPORAL_TEST_SERVER_PATH ??= tools.temporalTestServer;
  return {
    async close() {
      await temporal?.close();
      if (cluster) {
        cluster.stop({ remove: true });
        appCluster = undefined;
        delete process.env.TEST_PG_ADMIN_URL;
      }
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
