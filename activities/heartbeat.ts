import { Context } from '@temporalio/activity';

/** Heartbeats, when called inside an activity (a direct call from a benchmark or test has no context). */
export function heartbeat(details?: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (a direct call in a benchmark): nothing to report to.
  }
}

/**
 * Runs a long call (a Fly /wait of up to 60 s) while heartbeating every few seconds, so a cancelled
 * workflow (a stop during a slow boot) reaches the activity at once instead of after the call.
 */
export async function whileHeartbeating<T>(work: () => Promise<T>, details?: unknown): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return work();
  }
  const timer = setInterval(() => ctx.heartbeat(details), 2000);
  try {
    return await Promise.race([work(), ctx.cancelled]);
  } finally {
    clearInterval(timer);
  }
}

/** The activity's cancellation signal, for an abortable sleep; none outside an activity. */
export function cancellationSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
