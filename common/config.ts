import { z } from 'zod';

/**
 * Every knob of the system is an environment variable (docs/technical-description.md §7). Each process validates the subset
 * it needs at start-up and fails with a message that names the bad variable.
 */

const url = (protocols: string[]) =>
  z
    .url({ message: `must be a ${protocols.join(' or ')} URL` })
    .refine((v) => protocols.some((p) => v.startsWith(`${p}:`)), {
      message: `must be a ${protocols.join(' or ')} URL`,
    });

const port = z.coerce.number().int().min(0).max(65535);

/** The variables of the contract, with their defaults for local mode. */
export const contractEnv = {
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d+$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** The machine workflows' task queue (technical description §3: `machines`); the worker and the API must agree. */
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('machines'),
  /** Temporal Cloud / mTLS (optional; see docs/deploy.md). */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  FLY_API_URL: url(['http', 'https']).default('https://api.machines.dev/v1'),
  FLY_API_TOKEN: z.string().min(1).default('fly-local-dev-token'),
  FLY_APP: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'must be a Fly app name (lowercase letters, digits, dashes)')
    .default('cloud-execution-machines'),
  FLY_MACHINE_IMAGE: z.string().min(1).default('registry.fly.io/cloud-execution-runtime:latest'),
  DATABASE_URL: url(['postgres', 'postgresql']).optional(),
  SUPABASE_URL: url(['http', 'https']).optional(),
  SUPABASE_SERVICE_KEY: z.string().min(1).optional(),
  SUPABASE_ANON_KEY: z.string().min(1).optional(),
  SUPABASE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  BINANCE_WS_URL: url(['ws', 'wss']).default('wss://stream.binance.com:9443'),
  BINANCE_REST_URL: url(['http', 'https']).default('https://api.binance.com'),
  BINANCE_DATA_DIR: z.string().min(1).default('../shared/data/binance'),
  GEMINI_API_KEY: z.string().min(1).optional(),
  PORT: port.default(3000),
} as const;

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(
      `Invalid environment:\n${issues.map((i) => `  - ${i.variable}: ${i.message}`).join('\n')}\n` +
        'Fix the variable(s) above (see .env.example) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/** Parses `env` with `shape`; throws a ConfigError naming every bad variable. Empty strings count as unset. */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<z.ZodObject<S>> {
  const input = Object.fromEntries(Object.keys(shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })));
  }
  return result.data;
}

/** Picks a subset of the contract's variables. */
export function pickEnv<K extends keyof typeof contractEnv>(...keys: K[]): Pick<typeof contractEnv, K> {
  return Object.fromEntries(keys.map((k) => [k, contractEnv[k]])) as Pick<typeof contractEnv, K>;
}

/** How a process reaches Temporal (address, namespace, task queue, Cloud credentials): the API and the worker alike. */
export const temporalEnv = pickEnv(
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
);
/** How a process reaches the Fly Machines API. */
export const flyApiEnv = pickEnv('FLY_API_URL', 'FLY_API_TOKEN', 'FLY_APP');
