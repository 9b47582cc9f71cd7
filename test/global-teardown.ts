import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { PostgresCluster } from './kit/postgres-cluster';

export default async function globalTeardown() {
  const g = globalThis as { __ceTemporal?: TestWorkflowEnvironment; __cePostgres?: PostgresCluster };
  await g.__ceTemporal?.teardown();
  g.__cePostgres?.stop({ remove: true });
}
