import { readFileSync } from 'node:fs';

/** The Temporal settings both the API and the worker read (common/config.ts `temporalEnv`). */
export interface TemporalConnectionSettings {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_API_KEY?: string;
  TEMPORAL_TLS_CERT_PATH?: string;
  TEMPORAL_TLS_KEY_PATH?: string;
}

/** Connection options for Temporal: plain for local, API key or mTLS for Temporal Cloud / a secured cluster. */
export function temporalConnectionOptions(config: TemporalConnectionSettings) {
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
