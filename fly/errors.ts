/**
 * Typed errors of the Fly Machines client. Activities map them to Temporal ApplicationFailures:
 * `type` is the failure type (stable, part of the contract with the workflow) and `retryable` says
 * whether a retry policy may try again (technical description §3: 408 / 429 / 5xx retryable; 409 / 412 / 422 not).
 */

export type FlyErrorType =
  | 'FlyBadRequest'
  | 'FlyUnauthorized'
  | 'FlyNotFound'
  | 'FlyTimeout'
  | 'FlyConflict'
  | 'FlyPreconditionFailed'
  | 'FlyUnprocessable'
  | 'FlyRateLimited'
  | 'FlyServerError'
  | 'FlyApiError'
  | 'FlyConnection';

/** Fly's error body, normalised from its shapes: `{error}`, `{error, status}`, `{status: "error", message}`. */
export interface FlyErrorBody {
  /** The human-readable message. */
  message: string;
  /**
   * A machine-readable code when Fly gives one: the spec's `status` (`insufficient_capacity`,
   * `unknown`) or the gRPC-style prefix flaps puts before the message (`already_exists: …`).
   */
  code?: string;
  raw: unknown;
}

const typeByStatus: Record<number, FlyErrorType> = {
  400: 'FlyBadRequest',
  401: 'FlyUnauthorized',
  403: 'FlyUnauthorized',
  404: 'FlyNotFound',
  408: 'FlyTimeout',
  409: 'FlyConflict',
  412: 'FlyPreconditionFailed',
  422: 'FlyUnprocessable',
  429: 'FlyRateLimited',
};

export function flyErrorTypeForStatus(status: number): FlyErrorType {
  return typeByStatus[status] ?? (status >= 500 ? 'FlyServerError' : 'FlyApiError');
}

/** flyctl's transient set (`internal/flapsutil/retry.go`): timeouts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` as ms: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export abstract class FlyError extends Error {
  abstract readonly type: FlyErrorType;
  abstract readonly retryable: boolean;
  /** The client operation that failed, e.g. `createMachine`. */
  abstract readonly operation: string;
}

export class FlyApiError extends FlyError {
  override readonly name = 'FlyApiError';
  readonly type: FlyErrorType;
  readonly retryable: boolean;
  readonly code: string | undefined;

  constructor(
    readonly operation: string,
    readonly status: number,
    readonly body: FlyErrorBody,
    /** Fly's request id (`fly-request-id`), worth logging for Fly support. */
    readonly flyRequestId: string | undefined,
    /** From `Retry-After` (a 429 or 503): how long Fly asks us to wait, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(
      `Fly ${operation} failed: HTTP ${status}: ${body.message}${flyRequestId ? ` (fly-request-id ${flyRequestId})` : ''}`,
    );
    this.type = flyErrorTypeForStatus(status);
    this.retryable = isRetryableStatus(status);
    this.code = body.code;
  }
}

/** The request never got an HTTP answer (refused, reset, DNS, aborted): retryable. */
export class FlyConnectionError extends FlyError {
  override readonly name = 'FlyConnectionError';
  readonly type = 'FlyConnection' as const;
  readonly retryable = true;

  constructor(
    readonly operation: string,
    override readonly cause: unknown,
  ) {
    super(`Fly ${operation} failed: no answer from the Machines API: ${describeCause(cause)}`);
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // undici hides the useful part (ECONNREFUSED …) in `cause`.
  const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : '';
  return `${cause.message}${inner}`;
}

const codePrefix = /^([a-z]+(?:_[a-z]+)*):\s/;

/** Normalises any of Fly's error bodies (or a plain text body) into a `FlyErrorBody`. */
export function parseFlyErrorBody(raw: unknown, status: number): FlyErrorBody {
  let message: string | undefined;
  let code: string | undefined;
  if (typeof raw === 'string') {
    message = raw.trim() || undefined;
  } else if (raw && typeof raw === 'object') {
    const o = raw as Record<string, unknown>;
    if (typeof o.error === 'string') message = o.error;
    else if (typeof o.message === 'string') message = o.message;
    // `status` is a code in the spec's shape; in the `{status: "error", message}` shape it carries nothing.
    if (typeof o.status === 'string' && o.status !== 'error' && o.status !== '') code = o.status;
  }
  message ??= `HTTP ${status}`;
  code ??= codePrefix.exec(message)?.[1];
  return { message, code, raw };
}

export function isFlyError(err: unknown): err is FlyError {
  return err instanceof FlyError;
}

/** Retryable: 408, 429, 5xx and connection errors. Not: 400, 401, 404, 409, 412, 422, and anything that is not a Fly error. */
export function isRetryableFlyError(err: unknown): boolean {
  return isFlyError(err) && err.retryable;
}

/** Fly answered a create with a name already used in the app: the workflow adopts the existing machine. */
export function isAlreadyExists(err: unknown): boolean {
  if (!(err instanceof FlyApiError) || err.status !== 409) return false;
  return (
    err.code === 'already_exists' || err.code === 'name_taken' || /already (exists|been taken)/i.test(err.body.message)
  );
}

export function isNotFound(err: unknown): boolean {
  return err instanceof FlyApiError && err.status === 404;
}

/** The region has no room for the machine: another region may (docs/technical-description.md §3). */
export function isCapacityError(err: unknown): boolean {
  return (
    err instanceof FlyApiError &&
    (err.code === 'insufficient_capacity' || /insufficient (capacity|resources)/i.test(err.body.message))
  );
}
