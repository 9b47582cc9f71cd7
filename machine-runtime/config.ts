import { z } from 'zod';
import { CATCH_UP_MESSAGE, catchUpMaxMs } from '../common/catch-up';
import { ConfigError, parseEnv, pickEnv } from '../common/config';

export const runtimeEnv = {
  ...pickEnv('DATABASE_URL', 'SUPABASE_URL', 'SUPABASE_ANON_KEY', 'BINANCE_WS_URL', 'BINANCE_REST_URL', 'PORT'),
  USER_ID: z.uuid({ message: 'must be the user id (a UUID)' }),
  /** The short-lived user JWT minted by the worker (role authenticated, sub = USER_ID). */
  USER_TOKEN: z.string().regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, 'must be a JWT'),
  /** HS256 machine key of control/stream tokens (the worker derives it); without it SUPABASE_URL's JWKS is used. */
  TOKEN_VERIFY_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Optional static secret accepted wherever a control token is (/control/*, /health details). */
  CONTROL_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  HOST: z.string().min(1).default('::'),
  TRADER_POLL_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** The control plane's machine-facing API: traders, signals and AI notes through it, signed with the machine key. */
  MACHINE_API_URL: z.url({ message: 'must be the API base URL, e.g. https://api.example.com' }).optional(),
  AI_NOTE_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(4_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Set by Fly on every machine: a checkpoint written by another machine is not resumed (checkpoint.ts). */
  FLY_MACHINE_ID: z.string().min(1).max(100).optional(),
  /** How old a close missed while the machine was down may be and still fire after its restart. */
  RUNTIME_CATCHUP_MAX: z
    .string()
    .default('1 hour')
    .transform((v, ctx) => {
      const ms = catchUpMaxMs(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: CATCH_UP_MESSAGE });
        return z.NEVER;
      }
      return ms;
    }),
};

export { durationMs } from '../common/catch-up';
export type MachineRuntimeConfig = ReturnType<typeof loadConfig>;

/** Validates the environment; a ConfigError names every bad or missing variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const config = parseEnv(runtimeEnv, env);
  const issues: { variable: string; message: string }[] = [];
  if (!config.TOKEN_VERIFY_SECRET && !config.SUPABASE_URL) {
    issues.push({
      variable: 'TOKEN_VERIFY_SECRET',
      message: 'required unless SUPABASE_URL is set (its JWKS verifies tokens)',
    });
  }
  // A machine never holds a database credential: Supabase REST as its user, or the machine-facing API.
  if (!(config.SUPABASE_URL && config.SUPABASE_ANON_KEY) && !(config.MACHINE_API_URL && config.TOKEN_VERIFY_SECRET)) {
    issues.push({
      variable: config.SUPABASE_URL ? 'SUPABASE_ANON_KEY' : 'MACHINE_API_URL',
      message:
        'a store is required: MACHINE_API_URL (with TOKEN_VERIFY_SECRET), or SUPABASE_URL with SUPABASE_ANON_KEY',
    });
  }
  if (issues.length) throw new ConfigError(issues);
  return config;
}
