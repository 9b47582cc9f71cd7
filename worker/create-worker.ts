import type { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createFlyClient } from '../fly/client';
import { openServiceStore } from '../store';
import type { ServiceStore } from '../store/types';
import { TASK_QUEUE } from '../workflows/contract';
import { runtimeEnvFor, type WorkerConfig } from './config';

export const workflowsPath = require.resolve('../workflows');

/** Wires the real dependencies (Fly client, store) into the activities: the only place that does. */
export function activitiesFromConfig(
  config: WorkerConfig,
  opts: {
    /** reconcileFleet's activities list and signal machine workflows with it. */
    client: Client;
    store?: ServiceStore;
  },
) {
  const store =
    opts.store ??
    openServiceStore({
      databaseUrl: config.DATABASE_URL,
      supabaseUrl: config.SUPABASE_URL,
      supabaseServiceKey: config.SUPABASE_SERVICE_KEY,
    });
  return {
    store,
    activities: createActivities({
      fly: createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP }),
      store,
      temporal: { client: opts.client, taskQueue: config.TEMPORAL_TASK_QUEUE },
      image: config.FLY_MACHINE_IMAGE,
      jwtSecret: config.SUPABASE_JWT_SECRET,
      runtimeEnv: runtimeEnvFor(config),
      credentialTtlSeconds: config.CREDENTIAL_TTL_SECONDS,
    }),
  };
}

export async function createMachineWorker(opts: {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  activities: ReturnType<typeof createActivities>;
  maxCachedWorkflows?: number;
  maxConcurrentActivityTaskExecutions?: number;
  /** WORKER_STICKY_QUEUE_TIMEOUT in worker/config.ts: the trade-off. Default 10 s, the SDK's. */
  stickyQueueScheduleToStartTimeout?: WorkerOptions['stickyQueueScheduleToStartTimeout'];
  workflowBundlePath?: string;
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Tracing (worker/tracing.ts): a prebuilt bundle already holds its workflow interceptor modules. */
  interceptors?: WorkerOptions['interceptors'];
  sinks?: WorkerOptions['sinks'];
  /** Worker Versioning (worker/versioning.ts); unset, the worker is unversioned. */
  workerDeploymentOptions?: WorkerOptions['workerDeploymentOptions'];
}) {
  const bundle = opts.workflowBundle ?? (opts.workflowBundlePath ? { codePath: opts.workflowBundlePath } : undefined);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    activities: opts.activities,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath }),
    interceptors: bundle ? { ...opts.interceptors, workflowModules: undefined } : opts.interceptors,
    sinks: opts.sinks,
    workerDeploymentOptions: opts.workerDeploymentOptions,
    // Explicit: each cached workflow costs memory; the fleet benchmark measures the trade-off.
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 1000,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 200,
    stickyQueueScheduleToStartTimeout: opts.stickyQueueScheduleToStartTimeout ?? '10 seconds',
    shutdownGraceTime: '10 seconds',
    // A drain that has not finished by then is abandoned (run() rejects and the process exits): the
    // server retries whatever was in flight, and a stuck poll or activity can't keep a replaced worker alive.
    shutdownForceTime: '25 seconds',
    // Cancellation reaches an activity with a heartbeat's answer: keep that prompt for long Fly waits.
    defaultHeartbeatThrottleInterval: '2 seconds',
    maxHeartbeatThrottleInterval: '5 seconds',
  });
}
