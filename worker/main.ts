import { DefaultLogger, NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { ConfigError } from '../common/config';
import { loadWorkerConfig } from './config';
import { activitiesFromConfig, createMachineWorker, temporalConnectionOptions } from './create-worker';

/** `npm run worker`: the Temporal worker process for the `machines` task queue. */
async function main() {
  const config = loadWorkerConfig();
  // One logger for the SDK, workflows (through `log`) and activities.
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const { store, activities } = activitiesFromConfig(config);
  const worker = await createMachineWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    workflowBundlePath: config.WORKFLOW_BUNDLE_PATH,
  });
  Runtime.instance().logger.info('worker started', {
    taskQueue: worker.options.taskQueue,
    namespace: config.TEMPORAL_NAMESPACE,
    temporal: config.TEMPORAL_ADDRESS,
  });
  // The SDK shuts the worker down gracefully on SIGINT/SIGTERM; run() resolves once in-flight tasks finish.
  await worker.run();
  await store.close();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
