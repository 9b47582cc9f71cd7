import { TestWorkflowEnvironment } from '@temporalio/testing';
import { machineSearchAttributes } from '../common/search-attributes';
import { readToolPaths } from '../common/tools';
import { startPostgresCluster, type PostgresCluster } from './kit/postgres-cluster';
import { createTemplate } from './pg';

/**
 * One real Temporal dev server and one real Postgres per test run. Their addresses reach the test
 * files through the environment (Jest workers inherit it).
 */
export default async function globalSetup() {
  const tools = readToolPaths();
  const started = Date.now();

  let cluster: PostgresCluster | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    if (!tools.postgresBin)
      throw new Error('no DATABASE_URL and no Postgres binaries: run `npm test` (it runs the set-up)');
    cluster = await startPostgresCluster({ bin: tools.postgresBin, fast: true });
    adminUrl = cluster.url;
  }
  process.env.TEST_PG_ADMIN_URL = adminUrl;
  await createTemplate(adminUrl);

  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: tools.temporalCli },
      ip: '127.0.0.1',
      searchAttributes: machineSearchAttributes,
      log: { format: 'pretty', level: 'error' },
    },
  });
  process.env.TEMPORAL_TEST_ADDRESS = env.address;
  if (tools.temporalTestServer) process.env.TEMPORAL_TEST_SERVER_PATH = tools.temporalTestServer;

  Object.assign(globalThis, { __ceTemporal: env, __cePostgres: cluster });
  console.warn(
    `\n[test] Temporal dev server ${env.address}, Postgres ${cluster ? `private cluster on port ${cluster.port}` : 'DATABASE_URL'} (ready in ${Date.now() - started} ms)`,
  );
}
