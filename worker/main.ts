import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { ConfigError } from '../common/config';
import { loadWorkerConfig } from './config';
import { temporalConnectionOptions } from '../common/temporal-connection';
import { activitiesFromConfig, createMachineWorker } from './create-worker';
import { durationSeconds, ensureReconcileSchedule } from './reconcile-schedule';

/** `npm run worker`: the Temporal worker process for the `machines` task queue. */
async function main() {
  const config = loadWorkerConfig();
  // One logger for the SDK, workflows (through `log`) and activities.
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  // reconcileFleet's activities list workflows and signal them: they need a Temporal client.
  const clientConnection = await Connection.connect(temporalConnectionOptions(config));
  const client = new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE });
  const { store, activities } = activitiesFromConfig(config, { client });
  const worker = await createMachineWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    stickyQueueScheduleToStartTimeout: config.WORKER_STICKY_QUEUE_TIMEOUT,
    workflowBundlePath: config.WORKFLOW_BUNDLE_PATH,
  });
  Runtime.instance().logger.info('worker started', {
    taskQueue: worker.options.taskQueue,
    namespace: config.TEMPORAL_NAMESPACE,
    temporal: config.TEMPORAL_ADDRESS,
  });
  if (config.RECONCILE_ENABLED) {
    const schedule = await ensureReconcileSchedule(client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      interval: config.RECONCILE_INTERVAL,
      minMachineAgeSeconds: durationSeconds(config.RECONCILE_MIN_MACHINE_AGE),
    });
    Runtime.instance().logger.info(`reconcile schedule ${schedule.created ? 'created' : 'up to date'}`, {
      scheduleId: schedule.scheduleId,
      every: config.RECONCILE_INTERVAL,
    });
  }
  // The SDK shuts the worker down gracefully on SIGINT/SIGTERM; run() resolves once in-flight tasks finish.
  await worker.run();
  await store.close();
  await clientConnection.close();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
