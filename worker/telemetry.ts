import type { MetricMeter } from '@temporalio/common';
import { makeTelemetryFilterString, Runtime, type TelemetryOptions } from '@temporalio/worker';
import type { Logger as Pino } from 'pino';
import { createLogger } from '../common/log';
import { machineStates, type MachineState } from '../common/machine-states';
import type { ServiceStore } from '../store/types';
import { metricNames, provisioningBuckets } from '../workflows/lifecycle-metrics';
import type { WorkerConfig } from './config';
import { coreLogLevel, PinoSdkLogger, sdkLogLevel } from './sdk-logger';

/**
 * The worker's logs and metrics, installed once per process in the SDK's Runtime:
 * - one pino JSON logger (common/log.ts) for the SDK, workflows, activities and, forwarded, the SDK's core;
 * - one Prometheus endpoint (WORKER_METRICS_ADDRESS, `/metrics`) with the SDK's metrics (`temporal_…`) and ours
 *   (`cloud_execution_…`), which workflows and activities record through the SDK's metric meters.
 */
export interface WorkerTelemetry {
  log: Pino;
  /** Where Prometheus scrapes (`http://<it>/metrics`); undefined when off or when it could not bind. */
  metricsAddress?: string;
}

export function installWorkerTelemetry(
  config: Pick<WorkerConfig, 'LOG_LEVEL' | 'WORKER_METRICS_ADDRESS'>,
): WorkerTelemetry {
  const log = createLogger({ service: 'worker', level: config.LOG_LEVEL });
  const logging: TelemetryOptions['logging'] = {
    filter: makeTelemetryFilterString({ core: coreLogLevel(config.LOG_LEVEL), other: 'ERROR' }),
    forward: {},
  };
  const logger = new PinoSdkLogger(log);
  const address = config.WORKER_METRICS_ADDRESS === 'off' ? undefined : config.WORKER_METRICS_ADDRESS;
  if (address) {
    try {
      Runtime.install({
        logger,
        telemetryOptions: {
          logging,
          metrics: {
            prometheus: {
              bindAddress: address,
              histogramBucketOverrides: { [metricNames.provisioningSeconds]: provisioningBuckets },
            },
          },
        },
      });
      return { log, metricsAddress: address };
    } catch (err) {
      // The worker keeps the fleet alive: a taken metrics port is an error to fix, not a reason to stop renewing.
      log.error({ err, address }, 'metrics endpoint not started (WORKER_METRICS_ADDRESS): running without it');
    }
  }
  Runtime.install({ logger, telemetryOptions: { logging } });
  log.debug({ level: sdkLogLevel(config.LOG_LEVEL) }, 'SDK logging through pino');
  return { log };
}

/** The fleet by state, from the store (the workflows only count transitions: a gauge needs the rows). */
export const MACHINES_GAUGE = 'cloud_execution_machines';

/** Counts `cloud_machines` rows by status now and every `everySeconds`; returns a stop function. */
export function startMachinesGauge(opts: {
  store: Pick<ServiceStore, 'listMachines'>;
  everySeconds: number;
  log: Pino;
  meter?: MetricMeter;
}): () => void {
  if (opts.everySeconds <= 0) return () => undefined;
  const meter = opts.meter ?? Runtime.instance().metricMeter;
  const gauge = meter.createGauge(MACHINES_GAUGE, 'int', '', 'machines by state (cloud_machines rows)');
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const counts = new Map<MachineState, number>(machineStates.map((s) => [s, 0]));
      for (const row of await opts.store.listMachines()) counts.set(row.status, (counts.get(row.status) ?? 0) + 1);
      for (const [state, n] of counts) gauge.set(n, { state });
    } catch (err) {
      opts.log.warn({ err }, 'could not count machines by state');
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), opts.everySeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
