/**
 * What each variable is, in the words a person setting it needs: used by parseEnv's errors ("X is
 * required: <this>") and kept next to the schemas in common/config.ts, api/config.ts, worker/config.ts.
 */
export const envDocs: Record<string, string> = {
  TEMPORAL_ADDRESS: 'the Temporal frontend as host:port (Temporal Cloud: <namespace>.<account>.tmprl.cloud:7233)',
  TEMPORAL_NAMESPACE: 'the Temporal namespace the machine workflows run in',
  TEMPORAL_TASK_QUEUE: 'the task queue of the machine workflows; the API and the worker must agree',
  TEMPORAL_API_KEY: 'a Temporal Cloud API key (Cloud → Settings → API keys)',
  TEMPORAL_TLS: '"true" or "false": force TLS on or off',
  TEMPORAL_TLS_CLIENT_CERT_PATH: 'the path of the mTLS client certificate (PEM)',
  TEMPORAL_TLS_CLIENT_KEY_PATH: 'the path of the mTLS client key (PEM)',
  TEMPORAL_PROFILE: 'the profile to use from the Temporal TOML config file',
  TEMPORAL_CONFIG_FILE: 'the path of a Temporal TOML config file (temporal.toml)',
  FLY_API_URL: 'the Fly Machines API (https://api.machines.dev/v1; fly-local in local mode)',
  FLY_API_TOKEN: 'a Fly token for the machines app (fly tokens create deploy -a <app>)',
  FLY_APP: 'the Fly app that holds the users’ machines',
  FLY_MACHINE_IMAGE: 'the machine runtime image, pinned to a commit (registry.fly.io/<app>:<git sha>)',
  DATABASE_URL: 'a Postgres connection URL (postgres://user:password@host:5432/db)',
  SUPABASE_URL: 'the Supabase project URL (https://<ref>.supabase.co), from Supabase → Settings → API',
  SUPABASE_SERVICE_KEY: 'the service-role key, from Supabase → Settings → API (control plane only)',
  SUPABASE_ANON_KEY: 'the anon (public) key, from Supabase → Settings → API; machines use it with their own token',
  SUPABASE_JWT_SECRET: 'the project’s JWT secret, from Supabase → Settings → API → JWT Settings',
  WEBHOOK_SECRET: 'the shared secret billing webhooks are signed with',
  STRIPE_WEBHOOK_SECRET:
    'the Stripe endpoint’s signing secret (whsec_…, Stripe → Developers → Webhooks → the endpoint → Signing secret); several, comma-separated, while Stripe rolls it',
  STRIPE_PRICE_TIERS:
    'which Stripe price grants which tier, as price_id:tier pairs separated by commas (price_123:elite,price_456:pro)',
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: 'how old a Stripe-Signature timestamp may be, in seconds',
  BINANCE_WS_URL: 'Binance’s market data WebSocket (wss://stream.binance.com:9443)',
  BINANCE_REST_URL: 'Binance’s REST API (https://api.binance.com)',
  GEMINI_API_KEY: 'a Gemini API key for AI notes (kept on the API, never handed to a machine)',
  PORT: 'the port to listen on',
  MACHINE_API_URL: 'the API’s base URL as machines reach it (its /v1/machine routes)',
  LOG_LEVEL: 'how much to log',
  HEALTH_SWEEP_ENABLED:
    '"true" or "false": the worker keeps the fleet-wide health sweep Schedule (off: only hourly renewals check health)',
  HEALTH_SWEEP_INTERVAL:
    'how often the health sweep checks every running machine’s /health, a duration such as "1 minute" (a sick machine is noticed within about that)',
  API_RATE_LIMIT_WINDOW: 'the window of the per-user rate limit, a duration such as "1 minute"',
  API_PROVISION_COOLDOWN: 'how often a user may start a new machine, a duration such as "30 seconds"',
  API_METRICS_TOKEN: 'the bearer token Prometheus sends to read /metrics',
  UPTIME_SLO_PERCENT: 'the monthly uptime objective in percent, e.g. 99.5 (below it a credit is owed)',
  UPTIME_MONTHLY_FEE_USD: 'the elite tier’s monthly fee in US dollars: uptime credits are a share of it',
  API_DEV_SIGN_IN:
    '"true" or "false": local mode only, the dashboard’s "Dev sign-in" (GET /v1/dev/users, POST /v1/dev/sign-in) signs in as a seeded user without a password',
  USER_ID: 'the user this machine belongs to (set by the worker)',
  USER_TOKEN: 'the user token this machine starts with (set by the worker)',
  RUNTIME_CATCHUP_MAX:
    'how old a candle close missed while the machine was down may be and still fire after its restart, a duration such as "1 hour" (0: none)',
  FLY_MACHINE_ID: 'the Fly machine this runtime runs on (set by Fly; fly-local sets it too)',
};
