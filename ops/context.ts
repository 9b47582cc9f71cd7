import type { Client } from '@temporalio/client';
import type { FlyClient } from '../fly/client';
import type { UptimePolicy } from '../common/uptime-slo';
import type { ServiceStore } from '../store/types';

/** What every command talks to: handed in by `cli.ts` from the environment, or by a test from its stack. */
export interface OpsDeps {
  temporal: Client;
  /** The machine workflows' task queue (TEMPORAL_TASK_QUEUE): visibility listings and reconcile use it. */
  taskQueue: string;
  store: ServiceStore;
  fly: FlyClient;
  /** The Machines API's URL and token: `logs` reaches fly-local's admin API with them. */
  flyApi: { url: string; token: string };
  /** `uptime`'s SLO and fee (UPTIME_SLO_PERCENT, UPTIME_MONTHLY_FEE_USD); unset, the defaults. */
  uptime?: UptimePolicy;
  /** `reconcile`'s default `--min-age` (RECONCILE_MIN_MACHINE_AGE), in seconds. */
  minMachineAgeSeconds: number;
  /** Standard output and standard error. */
  out(text: string): void;
  err(text: string): void;
  now?(): number;
  /** Ends `logs --follow` (the CLI aborts it on Ctrl-C). */
  signal?: AbortSignal;
}

/** A failure to report as it is (exit 1), without a stack: "no machine workflow for user …". */
export class OpsError extends Error {
  override name = 'OpsError';
}

/** One readable line: our own errors as they are, others with their cause (a gRPC or HTTP failure). */
export function describeError(err: unknown): string {
  if (err instanceof OpsError) return err.message;
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
