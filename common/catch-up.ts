/**
 * RUNTIME_CATCHUP_MAX's one grammar, read by the runtime (machine-runtime/config.ts) and checked by
 * the worker that hands it to every machine (worker/config.ts): a value one accepts, the other does.
 */

/** A missed close older than this never fires after a restart, whatever is configured. */
export const MAX_CATCH_UP_MS = 24 * 3_600_000;
export const CATCH_UP_MESSAGE = 'must be a duration up to 24 hours, e.g. "1 hour", "30 minutes" or 0';

const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };

/** "90 seconds", "30 minutes", "1 hour", "45s", "2h", or plain seconds ("0": off); undefined if not one. */
export function durationMs(v: string): number | undefined {
  const m = /^\s*(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hours?)?\s*$/i.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * units[(m[2] ?? 's')[0]!.toLowerCase()]!;
}

/** The catch-up window in ms, or undefined when `v` is not a duration up to 24 hours. */
export function catchUpMaxMs(v: string): number | undefined {
  const ms = durationMs(v);
  return ms !== undefined && ms <= MAX_CATCH_UP_MS ? ms : undefined;
}
