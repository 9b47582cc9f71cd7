import type { Logger } from 'pino';

/** The slice of pino the runtime uses, so tests can pass `pino({ level: 'silent' })`. */
export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Exponential backoff with equal jitter: half fixed, half random, so reconnecting clients spread out. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
