import { z } from 'zod';
import { contractEnv, DEV_FLY_TOKEN, flyApiEnv, parseEnv, temporalEnv } from '../common/config';
import { devSignInIssues, flyIssues, refuse, storeIssues } from '../common/config-checks';
import { durationMs, type LifecycleSettings } from '../workflows/contract';
import { durationSchema as duration, regionSchema } from '../workflows/schemas';
import { uptimeEnv } from '../common/uptime-config';
import { DEFAULT_REGIONS } from './options';
import { parsePriceTiers } from './stripe-events';

const positiveInt = z.coerce.number().int().positive();

/**
 * The API's environment: the contract's variables plus a few API knobs, validated at start-up (a bad
 * one stops the process with a message naming it). Every `MACHINE_*` variable is optional: unset, the
 * workflow's own default applies.
 */
export const apiEnvShape = {
  PORT: contractEnv.PORT,
  /** `::` listens on every interface (IPv4 too on Linux); `127.0.0.1` for a laptop-only API. */
  API_HOST: z.string().min(1).default('::'),
  ...temporalEnv,
  ...flyApiEnv,
  DATABASE_URL: contractEnv.DATABASE_URL,
  SUPABASE_URL: contractEnv.SUPABASE_URL,
  SUPABASE_SERVICE_KEY: contractEnv.SUPABASE_SERVICE_KEY,
  /** With Supabase, the trader routes act as the caller through PostgREST (anon key + the caller's own token). */
  SUPABASE_ANON_KEY: contractEnv.SUPABASE_ANON_KEY,
  /** Verifies HS256 access tokens and derives each machine's key for the stream gateway: required. */
  SUPABASE_JWT_SECRET: contractEnv.SUPABASE_JWT_SECRET.unwrap(),
  /** Unset: the billing webhook answers 503 (nothing unsigned is ever accepted). */
  WEBHOOK_SECRET: contractEnv.WEBHOOK_SECRET,
  /**
   * Stripe's endpoint signing secrets, comma-separated: any one verifies (Stripe rolls a secret with an
   * overlap, so old and new are both set for a while). Unset: `POST /v1/webhooks/stripe` answers 503.
   * Errors name the entry by position, never by value (it is a secret).
   */
  STRIPE_WEBHOOK_SECRET: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()))
    .superRefine((secrets, ctx) => {
      const bad = secrets.findIndex((x) => !/^whsec_\S{8,}$/.test(x));
      if (bad >= 0)
        ctx.addIssue({
          code: 'custom',
          message: `must be a comma-separated list of Stripe endpoint secrets (whsec_…); entry ${bad + 1} is not one`,
        });
    })
    .optional(),
  /** Which Stripe price grants which tier: `price_123:elite,price_456:pro` (api/stripe-events.ts). */
  STRIPE_PRICE_TIERS: z
    .string()
    .superRefine((s, ctx) => {
      const parsed = parsePriceTiers(s);
      if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
    })
    .optional(),
  /** How old a Stripe-Signature timestamp may be, in seconds (Stripe's default 300). */
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce
    .number()
    .int()
    .min(1, 'must be at least 1 second: 0 would turn the timestamp check off')
    .max(86_400, 'must be at most 86400 seconds (a day): an old signature is a replay')
    .default(300),
  /** Access tokens living longer than this (exp − iat) are refused; Supabase's own default is 1 hour. */
  API_MAX_TOKEN_LIFETIME: duration.default('1 day'),
  /**
   * Local mode's "Dev sign-in" (api/dev-sign-in.ts): `GET /v1/dev/users` and `POST /v1/dev/sign-in`
   * mint a token for a seeded user without a password. Off by default; refused unless the stack is local.
   */
  API_DEV_SIGN_IN: z
    .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  /** Bearer token for `GET /metrics`; unset, only loopback clients may read it (metrics are not public). */
  API_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** A second, private port serving only GET /metrics without a token (Fly's Prometheus); unset = none. */
  API_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Requests per user per window on /v1/machines*. */
  API_RATE_LIMIT_MAX: positiveInt.default(60),
  API_RATE_LIMIT_WINDOW: duration.default('1 minute'),
  /** A user starts a new machine at most this often (429 with Retry-After before): Fly's budget is app-wide. */
  API_PROVISION_COOLDOWN: duration.default('30 seconds'),
  /** Gemini makes AI notes for machines (POST /v1/machine/ai-note); the key never leaves the API. */
  GEMINI_API_KEY: contractEnv.GEMINI_API_KEY,
  GEMINI_MODEL: z.string().min(1).default('gemini-2.5-flash'),
  /** A Gemini-compatible endpoint instead of Google's (tests, a proxy). */
  GEMINI_BASE_URL: z.url().optional(),
  GEMINI_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(4_000),
  API_AI_NOTES_PER_MINUTE: positiveInt.default(30),
  API_WEBHOOK_BODY_LIMIT_BYTES: positiveInt.default(64 * 1024),
  /** A stream link with more than this many bytes unsent toward either side is closed. */
  API_STREAM_MAX_BUFFERED_BYTES: positiveInt.default(1 << 20),
  /** Open streams per user, counted across every API replica (leases in Postgres). */
  API_STREAM_MAX_PER_USER: positiveInt.default(5),
  /**
   * How long a stream's lease lives unless renewed (its replica renews it every third of this while
   * the socket is open): after a replica crashes, its users' streams keep counting this long.
   */
  API_STREAM_LEASE_TTL: duration.default('30 seconds').refine((v) => {
    const ms = durationMs(v)!;
    return ms >= 1_000 && ms <= 600_000;
  }, 'must be between 1 second and 10 minutes: the streams of a crashed API keep counting against their users this long'),
  /** Frames per second a browser may send on a stream (a token bucket); over it the stream closes (1008). */
  API_STREAM_MAX_MESSAGES_PER_SECOND: positiveInt.default(20),
  /** Frames a browser may send at once on a stream (the token bucket's size). */
  API_STREAM_MESSAGE_BURST: positiveInt.default(40),
  /** Traders one user may have (enabled or not); POST /v1/traders answers 409 past it. */
  API_MAX_TRADERS_PER_USER: positiveInt.default(50),
  /** Comma-separated Fly regions a user may start a machine in (GET /v1/options); the first is the default. */
  API_REGIONS: z
    .string()
    .default(DEFAULT_REGIONS)
    .transform((s) => [...new Set(s.split(',').map((r) => r.trim()))])
    .pipe(z.array(regionSchema).min(1)),
  /** The uptime SLO (monthly) and the fee its credits are a share of (GET /v1/machines/me/uptime). */
  ...uptimeEnv,
  /** Klines for POST /v1/traders/preview (dev/binance-replay locally). */
  BINANCE_REST_URL: contractEnv.BINANCE_REST_URL,
  MACHINE_RENEWAL_INTERVAL: duration.optional(),
  MACHINE_PAYMENT_GRACE_PERIOD: duration.optional(),
  MACHINE_START_DEADLINE_SECONDS: positiveInt.optional(),
  MACHINE_HEALTH_DEADLINE_SECONDS: positiveInt.optional(),
  MACHINE_MAX_RESTARTS: z.coerce.number().int().min(0).optional(),
  MACHINE_CONTINUE_AS_NEW_EVERY: positiveInt.optional(),
  /** Comma-separated Fly regions tried in order when the first has no capacity, e.g. "fra,cdg". */
  MACHINE_FALLBACK_REGIONS: z
    .string()
    .transform((s) => s.split(',').map((r) => r.trim()))
    .pipe(z.array(regionSchema))
    .optional(),
};
export type ApiConfig = z.infer<z.ZodObject<typeof apiEnvShape>>;

export function loadApiConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  return parseEnv(apiEnvShape, env);
}

/**
 * The API process's start-up check (api/server.ts): the config, plus the combinations that cannot
 * work: half a Supabase configuration or no store at all, the real Fly API without a real token, dev
 * sign-in on a stack that is not local.
 * (Tests that build the app in-process use loadApiConfig alone.)
 */
export function loadApiProcessConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const config = loadApiConfig(env);
  refuse([...storeIssues(env), ...flyIssues(env, DEV_FLY_TOKEN), ...devSignInIssues(env)]);
  return config;
}

/** The lifecycle settings the API passes in each new workflow's input (only those configured). */
export function lifecycleSettingsFrom(config: ApiConfig): Partial<LifecycleSettings> {
  const settings: Partial<LifecycleSettings> = {};
  if (config.MACHINE_RENEWAL_INTERVAL) settings.renewalInterval = config.MACHINE_RENEWAL_INTERVAL.trim();
  if (config.MACHINE_PAYMENT_GRACE_PERIOD) settings.paymentGracePeriod = config.MACHINE_PAYMENT_GRACE_PERIOD.trim();
  if (config.MACHINE_START_DEADLINE_SECONDS) settings.startDeadlineSeconds = config.MACHINE_START_DEADLINE_SECONDS;
  if (config.MACHINE_HEALTH_DEADLINE_SECONDS) settings.healthDeadlineSeconds = config.MACHINE_HEALTH_DEADLINE_SECONDS;
  if (config.MACHINE_MAX_RESTARTS !== undefined) settings.maxRestarts = config.MACHINE_MAX_RESTARTS;
  if (config.MACHINE_CONTINUE_AS_NEW_EVERY) settings.continueAsNewEvery = config.MACHINE_CONTINUE_AS_NEW_EVERY;
  if (config.MACHINE_FALLBACK_REGIONS) settings.fallbackRegions = config.MACHINE_FALLBACK_REGIONS;
  return settings;
}
