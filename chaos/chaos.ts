import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createFlyClient } from '../fly/client';
import { readToolPaths } from '../common/tools';
import type { ServiceStore, SubscriptionTier } from '../store/types';
import { fakeRuntimePath, TEST_FLY_TOKEN, TEST_IMAGE, TEST_JWT_SECRET } from '../test/machine-stack';
import { workflowsPath } from '../worker/create-worker';
import { planTrial, seededRandom, type FaultOptions } from './faults';
import { killGroup } from '../test/kit/processes';
import { spawnWorker, startFlyLocal, startTemporalServer } from './processes';
import { summarize, type ChaosSummary, type TrialResult } from './report';
import { runTrial, type ChaosStack } from './trial';

/*
 * Chaos trials against the real worker process, fly-local and a file-backed Temporal dev server. Each
 * trial starts operations for a few users (provision, renewal, stop), SIGKILLs the worker at a seeded
 * random moment, may restart fly-local and Temporal too, restarts the worker, and waits until every
 * user has converged; then it runs reconcileFleet (twice at once) and checks the fleet's invariants.
 * This file sets the stack up and tears it down; faults.ts draws each trial's plan from the seed,
 * trial.ts runs one trial, invariants.ts says what must hold, report.ts summarises.
 */

export interface ChaosConfig extends FaultOptions {
  seed: number;
  trials: number;
  convergeTimeoutMs: number;
  database: { url: string; store: ServiceStore; createUser(tier?: SubscriptionTier): Promise<string> };
  log(line: string): void;
}

export async function runChaos(config: ChaosConfig): Promise<ChaosSummary> {
  const { log } = config;
  const rand = seededRandom(config.seed);
  const dir = mkdtempSync(join(tmpdir(), 'ce-chaos-'));
  const taskQueue = `chaos-${config.seed}`;
  log(`chaos: seed ${config.seed}, ${config.trials} trials, ${config.usersPerTrial} users each; logs in ${dir}`);

  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: silentLogger })).code);
  const temporal = await startTemporalServer({ cli: readToolPaths().temporalCli, dir });
  const flyLocal = await startFlyLocal({ dir, token: TEST_FLY_TOKEN, image: TEST_IMAGE, runtimePath: fakeRuntimePath });
  // Our own view of Fly: never through the fault injector's errors (only used with faults cleared).
  const fly = createFlyClient({ apiUrl: flyLocal.url, token: TEST_FLY_TOKEN, app: 'ce-chaos' });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  const workerEnv = {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    FLY_API_URL: flyLocal.url,
    FLY_API_TOKEN: TEST_FLY_TOKEN,
    FLY_APP: 'ce-chaos',
    FLY_MACHINE_IMAGE: TEST_IMAGE,
    DATABASE_URL: config.database.url,
    // The stand-in runtime needs no store; real machines would reach the API's machine routes here.
    MACHINE_API_URL: 'http://127.0.0.1:9',
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    WORKFLOW_BUNDLE_PATH: bundlePath,
    // Reconcile runs explicitly at each trial's end, so the orphan counts measure the workflow alone.
    RECONCILE_ENABLED: 'false',
    HEALTH_SWEEP_ENABLED: 'false', // no health sweep Schedule during a chaos run
  };
  const stack: ChaosStack = {
    dir,
    taskQueue,
    temporal,
    flyLocal,
    fly,
    connection,
    client,
    workerEnv,
    worker: spawnWorker({ dir, env: workerEnv }),
    convergeTimeoutMs: config.convergeTimeoutMs,
    database: config.database,
    log,
  };
  const results: TrialResult[] = [];

  try {
    for (let trial = 1; trial <= config.trials; trial++)
      results.push(await runTrial(stack, trial, planTrial(rand, config)));
  } finally {
    await killGroup(stack.worker);
    await connection.close().catch(() => undefined);
    await flyLocal.close();
    await temporal.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return summarize(config.seed, results);
}

const silentLogger = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} };
