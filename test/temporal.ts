import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { machineSearchAttributes } from '../common/search-attributes';

let quiet = false;
/** Workers log only warnings and errors in tests. */
export function quietTemporalLogs() {
  if (quiet) return;
  quiet = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by an earlier test file in this Jest worker: nothing to do.
  }
}

export function testAddress() {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address)
    throw new Error(
      'TEMPORAL_TEST_ADDRESS is not set: run the tests with `npm test` (Jest global setup starts Temporal)',
    );
  return address;
}

/** A client and a worker connection to the run's shared dev server. Close both in afterAll. */
export async function connectToTestServer() {
  quietTemporalLogs();
  const address = testAddress();
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection });
  return {
    client,
    connection,
    nativeConnection,
    async close() {
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/** The time-skipping test server, for tests that sleep days or months of workflow time. */
export async function createTimeSkippingEnv() {
  quietTemporalLogs();
  const path = process.env.TEMPORAL_TEST_SERVER_PATH;
  const env = await TestWorkflowEnvironment.createTimeSkipping(
    path ? { server: { executable: { type: 'existing-path', path } } } : undefined,
  );
  // The machine workflow upserts its search attributes; this server knows only those it is told of.
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(machineSearchAttributes.map((k) => [k.name, 2 /* KEYWORD */])),
  });
  return env;
}

/** Unique per test, so tests never share a workflow id or a task queue. */
export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Keeps `bundleWorkflowCode` quiet in test output. */
export const quietBundlerLogger = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} };
