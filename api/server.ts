import { Client, Connection } from '@temporalio/client';
import { createFlyClient } from '../fly/client';
import { ConfigError } from '../common/config';
import { createLogger } from '../common/log';
import { loadTracingConfig, startTracing, tracingClientInterceptors, type TracingConfig } from '../common/tracing';
import { openServiceStore } from '../store';
import { checkSearchAttributes, MissingSearchAttributesError } from '../common/search-attribute-check';
import { temporalConnectionOptions, temporalNamespace } from '../common/temporal-connection';
import { createApp } from './app';
import { loadApiProcessConfig, type ApiConfig } from './config';
import { createApiMetrics } from './metrics';
import { startMetricsServer } from './metrics-server';
import { traceHttpRequests } from './tracing';

/**
 * The API process: configuration, one Temporal connection, the store, listening on PORT and a
 * graceful shutdown (stop accepting, close streams, finish requests, then close connections).
 */
async function main(): Promise<void> {
  let config: ApiConfig;
  let tracingConfig: TracingConfig;
  try {
    config = loadApiProcessConfig();
    tracingConfig = loadTracingConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG: a bad environment will not fix itself by restarting
    }
    throw err;
  }
  // The shared JSON shape (common/log.ts): credentials redacted, whatever a serializer is later told to include.
  const logger = createLogger({ service: 'api', level: config.LOG_LEVEL });
  // Optional (OTEL_EXPORTER_OTLP_ENDPOINT): a request's span continues into the workflow it starts.
  const tracing = startTracing({ service: 'api', config: tracingConfig });

  const connection = await Connection.connect(temporalConnectionOptions(config));
  const namespace = temporalNamespace(config);
  // Every provision starts a workflow that writes five search attributes: without them POST /v1/machines
  // would be a bare 500. Missing ones stop start-up here with the commands that create them.
  try {
    if ((await checkSearchAttributes(connection, namespace)) === 'unverified')
      logger.warn({ namespace }, 'could not list the namespace’s search attributes (no permission?): not checked');
  } catch (err) {
    if (!(err instanceof MissingSearchAttributesError)) throw err;
    console.error(err.message);
    process.exit(78);
  }
  const temporal = new Client({
    connection,
    namespace,
    interceptors: tracingClientInterceptors(tracing),
  });
  const store = openServiceStore({
    databaseUrl: config.DATABASE_URL,
    supabaseUrl: config.SUPABASE_URL,
    supabaseServiceKey: config.SUPABASE_SERVICE_KEY,
  });
  const fly = createFlyClient({ apiUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP });
  if (!config.WEBHOOK_SECRET) logger.warn('WEBHOOK_SECRET is not set: POST /v1/webhooks/billing answers 503');

  const metrics = createApiMetrics({ defaultMetrics: true });
  const app = await createApp({
    config,
    temporal,
    store,
    fly,
    logger,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    metrics,
  });
  const metricsServer = config.API_METRICS_PORT
    ? await startMetricsServer({ port: config.API_METRICS_PORT, host: config.API_HOST, metrics })
    : undefined;
  if (tracing) traceHttpRequests(app.server, tracing.tracer);
  await app.listen({ port: config.PORT, host: config.API_HOST });
  logger.info(
    { port: config.PORT, dashboard: `http://127.0.0.1:${config.PORT}/`, tracing: tracing?.serviceName ?? 'off' },
    'api listening',
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app
      .close()
      .then(() => metricsServer?.close())
      .then(() => connection.close())
      .then(() => store.close())
      .then(() => tracing?.shutdown())
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
