import { Context } from '@temporalio/activity';
import { ApplicationFailure, type MetricMeter } from '@temporalio/common';
import { FlyApiError, isFlyError, type FlyError } from '../fly/errors';

/**
 * Fly errors become Temporal failures: retryable ones (408, 429, 5xx, no answer) are left to the
 * activity's retry policy, the others (400, 401, 404, 409, 412, 422) fail at once with a stable type.
 */
export function toActivityFailure(err: unknown): unknown {
  if (!isFlyError(err)) return err;
  const details =
    err instanceof FlyApiError ? [{ status: err.status, code: err.code, flyRequestId: err.flyRequestId }] : [];
  // A rate-limited (or unavailable) Fly says when to come back: the next attempt waits that long,
  // instead of the policy's backoff (bounded, so a bogus header cannot park a provisioning for hours).
  const retryAfter = err instanceof FlyApiError && err.retryable ? err.retryAfterMs : undefined;
  return ApplicationFailure.create({
    message: err.message,
    type: err.type,
    nonRetryable: !err.retryable,
    details,
    cause: err,
    ...(retryAfter !== undefined ? { nextRetryDelay: Math.min(Math.max(retryAfter, 1000), MAX_RETRY_AFTER_MS) } : {}),
  });
}

/** The longest `Retry-After` honoured as is. */
export const MAX_RETRY_AFTER_MS = 60_000;

export async function flyCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isFlyError(err)) countFailure(err);
    throw toActivityFailure(err);
  }
}

/** The metric of failed Fly calls (docs/operations.md), from the activity's meter: worker tags added. */
export const FLY_CALL_FAILURES = 'cloud_execution_fly_call_failures_total';

function countFailure(err: FlyError) {
  let meter: MetricMeter;
  try {
    meter = Context.current().metricMeter;
  } catch {
    return; // called outside an activity (a benchmark, a test): nothing to count on
  }
  meter.createCounter(FLY_CALL_FAILURES, '', 'failed Fly Machines API calls, by operation and status').add(1, {
    operation: err.operation,
    status: err instanceof FlyApiError ? String(err.status) : 'none',
  });
}
