import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { createActivities } from '../activities';
import { createFlyClient } from '../activities/fly/client';
import { openServiceStore } from '../store';
import type { ServiceStore } from '../store/types';
import { TASK_QUEUE } from '../workflows/contract';
import { runtimeEnvFor, type WorkerConfig } from './config';

export const workflowsPath = require.resolve('../workflows');

/** Connection options for Temporal: plain for local, API key or mTLS for Temporal Cloud / a secured cluster. */
export function temporalConnectionOptions(
  config: Pick<
    WorkerConfig,
    'TEMPORAL_ADDRESS' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT_PATH' | 'TEMPORAL_TLS_KEY_PATH'
  >,
) {
  const mtls =
    config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH
      ? {
          clientCertPair: {
            crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH),
            key: readFileSync(config.TEMPORAL_TLS_KEY_PATH),
          },
        }
      : undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY, tls: true as const } : {}),
    ...(mtls ? { tls: mtls } : {}),
  };
}

/** Wires the real dependencies (Fly client, store) into the activities: the only place that does. */
export function activitiesFromConfig(
  config: WorkerConfig,
  store: ServiceStore = openServiceStore({
    databaseUrl: config.DATABASE_URL,
    supabaseUrl: config.SUPABASE_URL,
    supabaseServiceKey: config.SUPABASE_SERVICE_KEY,
  }),
) {
  return {
    store,
    activities: createActivities({
      fly: createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP }),
      store,
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
}) {
  const bundle = opts.workflowBundle ?? (opts.workflowBundlePath ? { codePath: opts.workflowBundlePath } : undefined);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    activities: opts.activities,
    ...(bundle ? { workflowBundle: bundle } : { workflowsPath }),
    // Explicit: each cached workflow costs memory; the fleet benchmark measures the trade-off.
    maxCachedWorkflows: opts.maxCachedWorkflows ?? 1000,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 200,
    stickyQueueScheduleToStartTimeout: opts.stickyQueueScheduleToStartTimeout ?? '10 seconds',
    shutdownGraceTime: '10 seconds',
    // Cancellation reaches an activity with a heartbeat's answer: keep that prompt for long Fly waits.
    defaultHeartbeatThrottleInterval: '2 seconds',
    maxHeartbeatThrottleInterval: '5 seconds',
  });
}
