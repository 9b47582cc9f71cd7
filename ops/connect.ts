import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { ConfigError, contractEnv, flyApiEnv, parseEnv, temporalEnv } from '../common/config';
import { temporalConnectionOptions } from '../common/temporal-connection';
import { uptimeEnv, uptimePolicyFrom } from '../common/uptime-config';
import { createFlyClient } from '../fly/client';
import { openServiceStore } from '../store';
import { durationSeconds } from '../worker/reconcile-schedule';
import { durationMs } from '../workflows/contract';
import type { OpsDeps } from './context';

/**
 * The CLI's environment: the worker's own variables for Temporal, Fly and the store (the same names,
 * defaults and validation, common/config.ts), and RECONCILE_MIN_MACHINE_AGE for `reconcile`.
 */
export const opsEnvShape = {
  ...temporalEnv,
  ...flyApiEnv,
  DATABASE_URL: contractEnv.DATABASE_URL,
  SUPABASE_URL: contractEnv.SUPABASE_URL,
  SUPABASE_SERVICE_KEY: contractEnv.SUPABASE_SERVICE_KEY,
  ...uptimeEnv,
  RECONCILE_MIN_MACHINE_AGE: z
    .string()
    .refine((v) => durationMs(v) !== undefined, 'must be a duration like "10 minutes"')
    .default('10 minutes'),
};
export type OpsEnv = z.infer<z.ZodObject<typeof opsEnvShape>>;

export function loadOpsEnv(env: Record<string, string | undefined> = process.env): OpsEnv {
  const config = parseEnv(opsEnvShape, env);
  if (!config.DATABASE_URL && !(config.SUPABASE_URL && config.SUPABASE_SERVICE_KEY))
    throw new ConfigError([
      {
        variable: 'DATABASE_URL',
        message:
          'is required unless SUPABASE_URL and SUPABASE_SERVICE_KEY are set: the CLI reads cloud_machines (`npm start` prints its database URL)',
      },
    ]);
  return config;
}

/** Connects to Temporal, the store and Fly as the worker does; `close()` lets the process exit. */
export async function openOps(
  config: OpsEnv,
  io: Pick<OpsDeps, 'out' | 'err' | 'signal'>,
): Promise<OpsDeps & { close(): Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: '10 seconds' });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${config.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const store = openServiceStore({
    databaseUrl: config.DATABASE_URL,
    supabaseUrl: config.SUPABASE_URL,
    supabaseServiceKey: config.SUPABASE_SERVICE_KEY,
  });
  const fly = createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP });
  return {
    ...io,
    temporal,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    store,
    fly,
    flyApi: { url: config.FLY_API_URL, token: config.FLY_API_TOKEN },
    minMachineAgeSeconds: durationSeconds(config.RECONCILE_MIN_MACHINE_AGE),
    uptime: uptimePolicyFrom(config),
    async close() {
      await store.close();
      await connection.close();
    },
  };
}
