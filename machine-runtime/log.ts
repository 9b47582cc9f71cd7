import type { Logger } from 'pino';
import { createLogger, type LoggerOptions } from '../common/log';

/** The slice of pino the runtime uses, so tests can pass `pino({ level: 'silent' })`. */
export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/**
 * The runtime's logger: the JSON shape of the API and the worker (common/log.ts: `service`, ISO `time`,
 * level names, credentials redacted), with the machine's user on every line.
 */
export function createRuntimeLogger(opts: { level: LoggerOptions['level']; userId: string }): Logger {
  return createLogger({ service: 'machine-runtime', level: opts.level, base: { userId: opts.userId } });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Exponential backoff with equal jitter: half fixed, half random, so reconnecting clients spread out. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
