import { ApplicationFailure } from '@temporalio/common';
import { FlyApiError, isFlyError } from './fly/errors';

/**
 * Fly errors become Temporal failures: retryable ones (408, 429, 5xx, no answer) are left to the
 * activity's retry policy, the others (400, 401, 404, 409, 412, 422) fail at once with a stable type.
 */
export function toActivityFailure(err: unknown): unknown {
  if (!isFlyError(err)) return err;
  const details =
    err instanceof FlyApiError ? [{ status: err.status, code: err.code, flyRequestId: err.flyRequestId }] : [];
  return ApplicationFailure.create({
    message: err.message,
    type: err.type,
    nonRetryable: !err.retryable,
    details,
    cause: err,
  });
}

export async function flyCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toActivityFailure(err);
  }
}
