import { z } from 'zod';
import { contractEnv, DEV_FLY_TOKEN, flyApiEnv, parseEnv, temporalEnv } from '../common/config';
import { flyIssues, machineStoreIssues, refuse, storeIssues } from '../common/config-checks';
import { logLevels } from '../common/log';
import { CATCH_UP_MESSAGE, catchUpMaxMs } from '../common/catch-up';
import { durationSchema } from '../workflows/schemas';
import { HEALTH_SWEEP_DEFAULT_INTERVAL } from './health-sweep-schedule';

/** The worker's environment: the contract's variables plus a few worker knobs, validated at start-up. */
export const workerEnvShape = {
  ...temporalEnv,
  ...flyApiEnv,
  FLY_MACHINE_IMAGE: contractEnv.FLY_MACHINE_IMAGE,
  DATABASE_URL: contractEnv.DATABASE_URL,
  SUPABASE_URL: contractEnv.SUPABASE_URL,
  SUPABASE_SERVICE_KEY: contractEnv.SUPABASE_SERVICE_KEY,
  SUPABASE_ANON_KEY: contractEnv.SUPABASE_ANON_KEY,
  SUPABASE_JWT_SECRET: contractEnv.SUPABASE_JWT_SECRET.unwrap(),
  BINANCE_WS_URL: contractEnv.BINANCE_WS_URL,
  BINANCE_REST_URL: contractEnv.BINANCE_REST_URL,
  /** The API's address as machines reach it: its machine routes (traders, signals, AI notes). */
  MACHINE_API_URL: z.url({ message: 'must be the API base URL machines can reach' }).optional(),
  /**
   * Given to every machine: after a restart, how old a close missed while it was down may be and still
   * fire (machine-runtime/README.md, "Restarts"). Unset: the runtime's own default (1 hour).
   */
  RUNTIME_CATCHUP_MAX: z
    .string()
    .refine((v) => catchUpMaxMs(v) !== undefined, { message: CATCH_UP_MESSAGE }) // the runtime's own rule
    .optional(),
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(1000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().positive().default(200),
  /**
   * How long a workflow task may wait on this worker's sticky queue (where the workflow is cached) before it goes
   * back to the shared queue, where whichever worker takes it fetches and replays the whole history. Default: the
   * SDK's 10 s, which also bounds how long a crashed worker's workflows (and queries) wait for another worker
   * (workflows/worker-crash.test.ts relies on that). Under overload 10 s feeds itself: in the storm benchmark
   * (1,000 downgrades at once on a busy dev server) tasks waited longer, timed out and were replayed; "1 minute"
   * cut the dev server's CPU by ~30% and the storm's time by ~1.6× (bench/README.md, storm).
   */
  WORKER_STICKY_QUEUE_TIMEOUT: durationSchema.default('10 seconds'),
  /** A prebuilt workflow bundle (`npm run build` writes dist/workflow-bundle.js); default: bundle at start-up. */
  WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),
  /** reconcileFleet's Schedule (created or updated at worker start): on/off, interval, and the age below which nothing is touched. */
  RECONCILE_ENABLED: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  RECONCILE_INTERVAL: durationSchema.default('5 minutes'),
  RECONCILE_MIN_MACHINE_AGE: durationSchema.default('10 minutes'),
  /**
   * healthSweep's Schedule (worker/health-sweep-schedule.ts): on/off and its period. Every period one short run
   * checks every running machine's /health and signals the sick ones' workflows: a sick machine is noticed within
   * about one period, while each machine workflow renews only hourly (renewals are billed per user).
   */
  HEALTH_SWEEP_ENABLED: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  HEALTH_SWEEP_INTERVAL: durationSchema.default(HEALTH_SWEEP_DEFAULT_INTERVAL),
  /**
   * imageRollout at worker start (worker/rollout-start.ts): when running machines run another image than
   * FLY_MACHINE_IMAGE, start (or join) the rollout to it; machines updated at once.
   */
  ROLLOUT_ENABLED: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  ROLLOUT_BATCH_SIZE: z.coerce.number().int().min(1).max(20).default(3),
  /** Upper bound on a machine's user token; each one lives about three renewal intervals (common/machine-token.ts). */
  CREDENTIAL_TTL_SECONDS: z.coerce.number().int().min(300).optional(),
  /** The worker's log level (SDK, workflow and activity logs alike); any case, `WARN` = `warn`. */
  LOG_LEVEL: z.preprocess(
    (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
    z.enum(logLevels, { message: `must be one of ${logLevels.join(', ')}` }).default('info'),
  ),
  /** Prometheus endpoint of the SDK's and our metrics (`/metrics` on it), as host:port; `off` for none. */
  WORKER_METRICS_ADDRESS: z
    .string()
    .regex(/^(off|\[?[^\s/]*\]?:\d{1,5})$/, 'must be host:port (e.g. 0.0.0.0:9464) or off')
    .default('0.0.0.0:9464'),
  /** Port of the worker's `GET /healthz` (and `/metrics`, proxied); 0 = no health server. */
  WORKER_HEALTH_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** Worker Versioning: the Worker Deployment this worker joins (worker/versioning.ts); unset = unversioned. */
  WORKER_DEPLOYMENT_NAME: z.string().min(1).optional(),
  /** This build's version in that deployment: the git commit (the image build sets GIT_COMMIT). */
  WORKER_BUILD_ID: z.string().min(1).optional(),
  /** How often the worker counts machines by state from the store (`cloud_execution_machines`); 0 = never. */
  WORKER_MACHINES_GAUGE_SECONDS: z.coerce.number().int().min(0).default(60),
};
export type WorkerConfig = z.infer<z.ZodObject<typeof workerEnvShape>>;

export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const config = parseEnv(workerEnvShape, { ...env, WORKER_BUILD_ID: env.WORKER_BUILD_ID || env.GIT_COMMIT });
  // A store for the control plane, one for the machines (never a database credential), a real Fly token.
  refuse([
    ...storeIssues(env),
    ...machineStoreIssues(env),
    ...flyIssues(env, DEV_FLY_TOKEN),
    ...(config.WORKER_DEPLOYMENT_NAME && !config.WORKER_BUILD_ID
      ? [
          {
            variable: 'WORKER_BUILD_ID',
            message: 'is required with WORKER_DEPLOYMENT_NAME: the git commit of this build',
          },
        ]
      : []),
  ]);
  return config;
}

/**
 * What every machine's runtime is configured with. Never the service key, the JWT secret, a database
 * URL or the Gemini key: the machine reaches the store as its user (Supabase REST + anon key + its own
 * token), or through the API's machine routes signed with its own machine key.
 */
export function runtimeEnvFor(config: WorkerConfig): Record<string, string> {
  const env: Record<string, string> = {
    BINANCE_WS_URL: config.BINANCE_WS_URL,
    BINANCE_REST_URL: config.BINANCE_REST_URL,
  };
  // Never a database credential: Supabase REST as the user (anon key + its token), else the API's machine routes.
  if (config.SUPABASE_URL && config.SUPABASE_ANON_KEY) {
    env.SUPABASE_URL = config.SUPABASE_URL;
    env.SUPABASE_ANON_KEY = config.SUPABASE_ANON_KEY;
  }
  // The API's machine routes: traders and signals (without Supabase), AI notes (the Gemini key stays there).
  if (config.MACHINE_API_URL) env.MACHINE_API_URL = config.MACHINE_API_URL;
  if (config.RUNTIME_CATCHUP_MAX) env.RUNTIME_CATCHUP_MAX = config.RUNTIME_CATCHUP_MAX;
  return env;
}
