import type { StopReason } from './stream-health';

/**
 * When the stream client reconnects and how soon: exponential backoff with jitter, and the closes and
 * refused handshakes after which reconnecting cannot help.
 */

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
  jitter: number;
}

/** 1 s doubling to 30 s, each delay cut by up to half at random. */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** The delay before reconnect attempt `attempt` (0-based), jittered so many browsers dropped at once do not come back at once. */
export function reconnectDelay(backoff: Backoff, attempt: number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** attempt);
  return Math.round(base * (1 - backoff.jitter * Math.random()));
}

/** Close codes after which reconnecting cannot help (api/stream.ts, machine-runtime/app.ts). */
export const TERMINAL_CLOSES: Record<number, StopReason> = {
  1000: 'closed_by_server',
  1001: 'machine_stopped',
  4401: 'unauthorized',
  4403: 'unauthorized',
  4404: 'no_machine',
  4503: 'machine_stopped',
};

/** The stop a refused upgrade's status calls for, when the error names it: Node's `ws` does, browsers say nothing. */
export function refusedUpgradeStop(errorText: string): StopReason | undefined {
  if (/\b(401|403)\b/.test(errorText)) return 'unauthorized';
  if (/\b404\b/.test(errorText)) return 'no_machine';
  return undefined;
}
