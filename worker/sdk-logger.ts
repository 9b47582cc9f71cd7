import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import type { Logger as Pino } from 'pino';
import type { LogLevelName } from '../common/log';

/**
 * The SDK's `Logger` over pino: what the SDK, the workflows (`log` of @temporalio/workflow), the activities
 * (`log` of @temporalio/activity) and, forwarded, the SDK's native core say comes out as one pino JSON line
 * each, with the SDK's metadata as fields (sdkComponent, namespace, taskQueue, workflowId, runId,
 * workflowType, activityType, activityId, attempt, …). pino's own level decides what is written.
 */

/** LOG_LEVEL (worker/config.ts) → the SDK's level. */
export function sdkLogLevel(level: LogLevelName): LogLevel {
  return level.toUpperCase() as LogLevel;
}

/** The SDK's level → pino's method. */
export function pinoLevel(level: LogLevel): LogLevelName {
  switch (level) {
    case 'TRACE':
      return 'trace';
    case 'DEBUG':
      return 'debug';
    case 'INFO':
      return 'info';
    case 'WARN':
      return 'warn';
    default:
      return 'error';
  }
}

/**
 * What the SDK's native core may log at: the worker's level, but never chattier than WARN (core's INFO
 * and DEBUG are per-poll detail, for debugging the SDK itself).
 */
export function coreLogLevel(level: LogLevelName): LogLevel {
  return level === 'error' ? 'ERROR' : 'WARN';
}

/** Metadata as fields: symbol keys (the SDK's timestamp of a forwarded core line) are not JSON. */
function fields(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) out[key] = typeof value === 'bigint' ? String(value) : value;
  return out;
}

export class PinoSdkLogger implements Logger {
  constructor(private readonly pino: Pino) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const method = pinoLevel(level);
    if (this.pino.isLevelEnabled(method)) this.pino[method](fields(meta), message);
  }
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}
