import {
  FlyApiError,
  FlyConnectionError,
  flyErrorTypeForStatus,
  isAlreadyExists,
  isCapacityError,
  isRetryableFlyError,
  parseFlyErrorBody,
  parseRetryAfter,
} from './errors';
import { MAX_RETRY_AFTER_MS, toActivityFailure } from '../activities/fly-failures';

const apiError = (status: number, raw: unknown = { error: 'x' }) =>
  new FlyApiError('op', status, parseFlyErrorBody(raw, status), 'req-1');

test('retryable: 408, 429, 5xx and connection errors; not 400, 401, 404, 409, 412, 422', () => {
  for (const status of [408, 429, 500, 502, 503, 504]) expect(isRetryableFlyError(apiError(status))).toBe(true);
  for (const status of [400, 401, 403, 404, 409, 412, 422]) expect(isRetryableFlyError(apiError(status))).toBe(false);
  expect(isRetryableFlyError(new FlyConnectionError('op', new TypeError('fetch failed')))).toBe(true);
  expect(isRetryableFlyError(new Error('not a Fly error'))).toBe(false);
});

test('each status has a stable type', () => {
  expect([400, 401, 404, 408, 409, 412, 422, 429, 503, 418].map((s) => [s, flyErrorTypeForStatus(s)])).toEqual([
    [400, 'FlyBadRequest'],
    [401, 'FlyUnauthorized'],
    [404, 'FlyNotFound'],
    [408, 'FlyTimeout'],
    [409, 'FlyConflict'],
    [412, 'FlyPreconditionFailed'],
    [422, 'FlyUnprocessable'],
    [429, 'FlyRateLimited'],
    [503, 'FlyServerError'],
    [418, 'FlyApiError'],
  ]);
});

test("Fly's error bodies parse from every shape", () => {
  expect(parseFlyErrorBody({ error: 'already_exists: taken' }, 409)).toMatchObject({
    message: 'already_exists: taken',
    code: 'already_exists',
  });
  expect(parseFlyErrorBody({ error: 'no room', status: 'insufficient_capacity' }, 412)).toMatchObject({
    message: 'no room',
    code: 'insufficient_capacity',
  });
  expect(parseFlyErrorBody({ status: 'error', message: 'lease currently held' }, 409)).toMatchObject({
    message: 'lease currently held',
    code: undefined,
  });
  expect(parseFlyErrorBody('<html>bad gateway</html>', 502).message).toBe('<html>bad gateway</html>');
  expect(parseFlyErrorBody(undefined, 504).message).toBe('HTTP 504');
});

test('isAlreadyExists and isCapacityError', () => {
  expect(isAlreadyExists(apiError(409, { error: 'already_exists: machine name taken' }))).toBe(true);
  expect(isAlreadyExists(apiError(409, { status: 'error', message: 'Name has already been taken' }))).toBe(true);
  expect(isAlreadyExists(apiError(409, { error: 'lease currently held by x' }))).toBe(false);
  expect(isAlreadyExists(apiError(422, { error: 'already_exists: x' }))).toBe(false);
  expect(isCapacityError(apiError(412, { error: 'x', status: 'insufficient_capacity' }))).toBe(true);
  expect(isCapacityError(apiError(412, { error: 'volume in use' }))).toBe(false);
});

test('the message carries the operation, status and fly-request-id', () => {
  const err = apiError(503, { error: 'upstream down' });
  expect(err.message).toBe('Fly op failed: HTTP 503: upstream down (fly-request-id req-1)');
  expect(err).toMatchObject({ operation: 'op', status: 503, flyRequestId: 'req-1', type: 'FlyServerError' });
});

test('Retry-After: delay-seconds or an HTTP date, else nothing', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  expect(parseRetryAfter('3', now)).toBe(3000);
  expect(parseRetryAfter('Tue, 01 Dec 2026 12:00:05 GMT', now)).toBe(5000);
  expect(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now)).toBe(0);
  expect(parseRetryAfter('soon', now)).toBeUndefined();
  expect(parseRetryAfter(null, now)).toBeUndefined();
});

test('a retryable Fly error with Retry-After becomes a failure whose next retry waits that long (bounded)', () => {
  const limited = new FlyApiError('createMachine', 429, { message: 'slow down', raw: {} }, 'req-1', 2500);
  expect(toActivityFailure(limited)).toMatchObject({
    type: 'FlyRateLimited',
    nonRetryable: false,
    nextRetryDelay: 2500,
  });
  const huge = new FlyApiError('createMachine', 429, { message: 'slow down', raw: {} }, 'req-2', 3_600_000);
  expect(toActivityFailure(huge)).toMatchObject({ nextRetryDelay: MAX_RETRY_AFTER_MS });
  const refused = new FlyApiError('createMachine', 422, { message: 'no', raw: {} }, 'req-3', 2500);
  expect((toActivityFailure(refused) as { nextRetryDelay?: unknown }).nextRetryDelay).toBeUndefined();
});
