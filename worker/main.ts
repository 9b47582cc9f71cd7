import { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { ConfigError } from '../common/config';
import { createLogger } from '../common/log';
import { loadTracingConfig, startTracing, tracingClientInterceptors } from '../common/tracing';
import { loadWorkerConfig } from './config';
import { checkSearchAttributes, MissingSearchAttributesError } from '../common/search-attribute-check';
import { temporalConnectionOptions, temporalNamespace } from '../common/temporal-connection';
import { activitiesFromConfig, createMachineWorker } from './create-worker';
import { startHealthServer } from './health-server';
import { ensureHealthSweepSchedule } from './health-sweep-schedule';
import { durationSeconds, ensureReconcileSchedule } from './reconcile-schedule';
import { startImageRolloutAtStartup } from './rollout-start';
import { installWorkerTelemetry, startMachinesGauge } from './telemetry';
import { workerTracingOptions } from './tracing';
import { workerDeploymentOptions } from './versioning';

/** `npm run worker`: the Temporal worker process for the `machines` task queue. */
async function main() {
  const config = loadWorkerConfig();
  const tracingConfig = loadTracingConfig();
  // One pino logger for the SDK, workflows (through `log`), activities and core; one Prometheus endpoint.
  const { log, metricsAddress } = installWorkerTelemetry(config);
  const tracing = startTracing({ service: 'worker', config: tracingConfig });
  const created: { worker?: Worker } = {};
  const health = config.WORKER_HEALTH_PORT
    ? await startHealthServer({
        port: config.WORKER_HEALTH_PORT,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        state: () => created.worker?.getState() ?? 'STARTING',
        metricsAddress,
        log,
      }).catch((err: unknown) => {
        // Like a taken metrics address: logged, and the worker goes on keeping the fleet renewed.
        log.error({ err, port: config.WORKER_HEALTH_PORT }, 'health server not started (WORKER_HEALTH_PORT)');
        return undefined;
      })
    : undefined;

  // One connection for the worker and the client its activities use (reconcile, rollout).
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const namespace = temporalNamespace(config);
  // The five search attributes every machine workflow writes: missing ones stop start-up with the commands.
  if ((await checkSearchAttributes(connection, namespace)) === 'unverified')
    log.warn({ namespace }, 'could not list the namespace’s search attributes (no permission?): not checked');
  const client = new Client({ connection, namespace, interceptors: tracingClientInterceptors(tracing) });
  const { store, activities } = activitiesFromConfig(config, { client });
  const worker = (created.worker = await createMachineWorker({
    connection,
    namespace,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workerDeploymentOptions: workerDeploymentOptions(config),
    activities,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    stickyQueueScheduleToStartTimeout: config.WORKER_STICKY_QUEUE_TIMEOUT,
    workflowBundlePath: config.WORKFLOW_BUNDLE_PATH,
    ...workerTracingOptions(tracing, { prebuiltBundle: !!config.WORKFLOW_BUNDLE_PATH }),
  }));
  const stopGauge = startMachinesGauge({ store, everySeconds: config.WORKER_MACHINES_GAUGE_SECONDS, log });
  log.info(
    {
      taskQueue: worker.options.taskQueue,
      namespace,
      temporal: config.TEMPORAL_ADDRESS,
      version: config.WORKER_DEPLOYMENT_NAME
        ? `${config.WORKER_DEPLOYMENT_NAME}@${config.WORKER_BUILD_ID}`
        : 'unversioned',
      metrics: metricsAddress ? `http://${metricsAddress}/metrics` : 'off',
      health: health ? `:${health.port}/healthz` : 'off',
      tracing: tracing ? tracing.serviceName : 'off',
    },
    'worker started',
  );
  if (config.RECONCILE_ENABLED) {
    const schedule = await ensureReconcileSchedule(client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      interval: config.RECONCILE_INTERVAL,
      minMachineAgeSeconds: durationSeconds(config.RECONCILE_MIN_MACHINE_AGE),
    });
    log.info(
      { scheduleId: schedule.scheduleId, every: config.RECONCILE_INTERVAL },
      `reconcile schedule ${schedule.created ? 'created' : 'up to date'}`,
    );
  }
  if (config.HEALTH_SWEEP_ENABLED) {
    const sweep = await ensureHealthSweepSchedule(client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      interval: config.HEALTH_SWEEP_INTERVAL,
    });
    log.info(
      { scheduleId: sweep.scheduleId, every: config.HEALTH_SWEEP_INTERVAL },
      `health sweep schedule ${sweep.created ? 'created' : 'up to date'}`,
    );
  }
  await startImageRolloutAtStartup(client, config, log); // running machines on another image: roll it out
  // The SDK shuts the worker down gracefully on SIGINT/SIGTERM; run() resolves once in-flight tasks finish.
  // Meanwhile /healthz answers 503 (stopping, draining), and stops answering once the process is done.
  try {
    await worker.run();
  } finally {
    stopGauge();
    await health?.close();
  }
  log.info('worker stopped');
  await tracing?.shutdown();
  await store.close();
  await connection.close();
  // Everything is closed; a handle some library left open must not keep the process (and its machine) alive.
  setTimeout(() => process.exit(0), 5000).unref();
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof MissingSearchAttributesError) console.error(err.message);
  else createLogger({ service: 'worker' }).fatal({ err }, 'worker failed');
  process.exit(1);
});
