import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createFlyClient } from '../fly/client';
import { ConfigError } from '../common/config';
import { openServiceStore } from '../store';
import { temporalConnectionOptions } from '../common/temporal-connection';
import { createApp } from './app';
import { loadApiConfig, type ApiConfig } from './config';
import { createApiMetrics } from './metrics';

/**
 * The API process: configuration, one Temporal connection, the store, listening on PORT and a
 * graceful shutdown (stop accepting, close streams, finish requests, then close connections).
 */
async function main(): Promise<void> {
  let config: ApiConfig;
  try {
    config = loadApiConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG: a bad environment will not fix itself by restarting
    }
    throw err;
  }
  const logger = pino({
    level: config.LOG_LEVEL,
    base: { service: 'api' },
    // Never log credentials, whatever a serializer is later told to include.
    redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]', 'req.headers["x-signature"]'],
  });

  const connection = await Connection.connect(temporalConnectionOptions(config));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const store = openServiceStore({
    databaseUrl: config.DATABASE_URL,
    supabaseUrl: config.SUPABASE_URL,
    supabaseServiceKey: config.SUPABASE_SERVICE_KEY,
  });
  const fly = createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP });
  if (!config.WEBHOOK_SECRET) logger.warn('WEBHOOK_SECRET is not set: POST /v1/webhooks/billing answers 503');

  const app = await createApp({
    config,
    temporal,
    store,
    fly,
    logger,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    metrics: createApiMetrics({ defaultMetrics: true }),
  });
  await app.listen({ port: config.PORT, host: config.API_HOST });
  logger.info({ port: config.PORT, dashboard: `http://127.0.0.1:${config.PORT}/` }, 'api listening');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app
      .close()
      .then(() => connection.close())
      .then(() => store.close())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
