import { z } from 'zod';
import { envDocs } from './env-docs';

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

/** fly-local's token in local mode; refused for the real Fly API (common/config-checks.ts). */
export const DEV_FLY_TOKEN = 'fly-local-dev-token';

/** The variables of the contract, with their defaults for local mode. */
export const contractEnv = {
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d+$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** The machine workflows' task queue (technical description §3: `machines`); the worker and the API must agree. */
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('machines'),
  /**
   * Temporal Cloud / mTLS (optional; see docs/deploy.md): Temporal's own names, read by
   * common/temporal-connection.ts through @temporalio/envconfig (a TOML profile works too).
   */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false'], { message: 'must be true or false' }).optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_PROFILE: z.string().min(1).optional(),
  TEMPORAL_CONFIG_FILE: z.string().min(1).optional(),
  /** Older names for TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH, still accepted. */
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  FLY_API_URL: url(['http', 'https']).default('https://api.machines.dev/v1'),
  FLY_API_TOKEN: z.string().min(1).default(DEV_FLY_TOKEN),
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
      `The configuration needs attention before this can start:\n${issues.map((i) => `  - ${i.variable} ${i.message}`).join('\n')}\n` +
        'Set or fix the variable(s) above (.env.example lists them all) and start again.',
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
    // One sentence per variable: a value failing two checks (not a URL, and not an http URL) reads once.
    const issues = new Map<string, string>();
    for (const issue of result.error.issues) {
      const variable = String(issue.path[0] ?? '?');
      if (!issues.has(variable)) issues.set(variable, explain(issue, input[variable] === undefined, envDocs[variable]));
    }
    throw new ConfigError([...issues].map(([variable, message]) => ({ variable, message })));
  }
  return result.data;
}

/**
 * One zod issue as a sentence a person understands: "is required: <what it is>" when unset, the
 * schema's own message when it has one ("must be host:port"), else a translation of zod's code.
 * Never zod's raw wording ("Invalid input: expected string, received undefined").
 */
export function explain(issue: z.core.$ZodIssue, unset: boolean, doc?: string): string {
  const what = doc ? ` (${doc})` : '';
  if (unset && issue.code === 'invalid_type') return `is required${doc ? `: ${doc}` : ''}`;
  const own = !/^(Invalid|Too (small|big)|Expected|Unrecognized)/.test(issue.message);
  if (own) return `${issue.message}${what}`;
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${issue.expected === 'number' ? 'a number' : `a ${issue.expected}`}${what}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : ''}${what}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${issue.origin === 'string' ? ' characters long' : ''}${what}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => `"${String(v)}"`).join(', ')}${what}`;
    case 'invalid_format':
      return `is not a valid ${issue.format === 'url' ? 'URL' : issue.format}${what}`;
    default:
      return `has a value this program cannot use${what}`;
  }
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
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_TLS_CERT_PATH',
  'TEMPORAL_TLS_KEY_PATH',
);
/** How a process reaches the Fly Machines API. */
export const flyApiEnv = pickEnv('FLY_API_URL', 'FLY_API_TOKEN', 'FLY_APP');
