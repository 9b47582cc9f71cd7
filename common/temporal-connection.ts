import { loadClientConnectConfig } from '@temporalio/envconfig';

/**
 * The Temporal settings both the API and the worker read. The names are Temporal's own (the CLI's and
 * every SDK's environment configuration: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
 * TEMPORAL_TLS_CLIENT_CERT_PATH, …, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE for a TOML profile);
 * TEMPORAL_TLS_CERT_PATH / TEMPORAL_TLS_KEY_PATH are this project's older names, kept as aliases.
 */
export interface TemporalConnectionSettings {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  TEMPORAL_TLS_CERT_PATH?: string;
  TEMPORAL_TLS_KEY_PATH?: string;
}

/** The older names this project used, and Temporal's standard name for each. */
export const TEMPORAL_ENV_ALIASES = {
  TEMPORAL_TLS_CERT_PATH: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY_PATH: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
} as const;

/**
 * Connection options for a Temporal client or worker, loaded the way Temporal's CLI and SDKs load them
 * (`@temporalio/envconfig`): a TOML profile when TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE (or the default
 * file) gives one, overridden by the environment; API key (TLS on), mTLS, or plain for local. The
 * validated address and namespace (with their local defaults) win over a profile only when set in
 * the environment.
 */
export function temporalConnectionOptions(
  config: TemporalConnectionSettings,
  env: Record<string, string | undefined> = process.env,
) {
  return load(config, env).connectionOptions;
}

/** The namespace to use: TEMPORAL_NAMESPACE, else the profile's, else `default`. */
export function temporalNamespace(
  config: TemporalConnectionSettings,
  env: Record<string, string | undefined> = process.env,
): string {
  return load(config, env).namespace ?? config.TEMPORAL_NAMESPACE;
}

function load(config: TemporalConnectionSettings, env: Record<string, string | undefined>) {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('TEMPORAL_') && v) vars[k] = v;
  for (const [old, standard] of Object.entries(TEMPORAL_ENV_ALIASES)) {
    const value = config[old as keyof typeof TEMPORAL_ENV_ALIASES];
    if (value && !vars[standard]) vars[standard] = value;
  }
  const fromProfile = Boolean(vars.TEMPORAL_PROFILE || vars.TEMPORAL_CONFIG_FILE);
  if (!fromProfile || env.TEMPORAL_ADDRESS) vars.TEMPORAL_ADDRESS = config.TEMPORAL_ADDRESS;
  if (!fromProfile || env.TEMPORAL_NAMESPACE) vars.TEMPORAL_NAMESPACE = config.TEMPORAL_NAMESPACE;
  // Only an explicitly named file is read: a stray ~/.config/temporalio/temporal.toml never changes a server's target.
  const loaded = loadClientConnectConfig({ overrideEnvVars: vars, disableFile: !fromProfile });
  const address = loaded.connectionOptions.address ?? config.TEMPORAL_ADDRESS;
  return { connectionOptions: { ...loaded.connectionOptions, address }, namespace: loaded.namespace };
}
