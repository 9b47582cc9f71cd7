import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { RateHit, ServiceStore } from '../store/types';

/*
 * The per-user limits every API replica shares, kept in Postgres (supabase/migrations/…_api_limits.sql):
 * the request rate limit's counters and the leases of open streams. What happens when the database
 * does not answer is decided here: the rate limit fails OPEN (the request goes on, a warning is
 * logged: an outage of the limiter must not take the API down), a stream lease fails CLOSED (the
 * stream closes 1013, try again later: an uncounted stream could exceed the user's cap on every replica).
 */

/** How long a limiter's database call may take before it counts as failed. */
export const SHARED_LIMIT_TIMEOUT_MS = 2_000;
/** At most one "limiter unavailable" warning per this long, per process (an outage would flood the log). */
const WARN_EVERY_MS = 30_000;

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A hit as @fastify/rate-limit wants it: hits so far in the window (over `max` once refused), ms until it ends. */
export function pluginCount(hit: RateHit, max: number, windowMs: number, now = Date.now()) {
  const ttl = Math.min(windowMs, Math.max(0, hit.resetAt.getTime() - now));
  return { current: hit.allowed ? max - hit.remaining : max + 1, ttl };
}

type RateLimitCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * A @fastify/rate-limit `store` (its documented custom-store interface: `incr(key, cb, timeWindow, max)`
 * and `child(routeOptions)`) counting in Postgres through `store.rateHit`, so one budget holds across
 * every replica. The plugin keeps deciding and answering (429, `x-ratelimit-*`, `retry-after`) as with
 * its in-memory store. Register the plugin with `skipOnError: true`: a failed count lets the request
 * through (fail open), and this store logs why.
 */
export function sharedRateLimitStore(deps: {
  store: Pick<ServiceStore, 'rateHit'>;
  log: FastifyBaseLogger;
  timeoutMs?: number;
}) {
  let warnedAt = 0;
  return class SharedRateLimitStore {
    incr(key: string, cb: RateLimitCallback, timeWindow: number, max: number): void {
      withTimeout(
        deps.store.rateHit({ key, windowMs: timeWindow, max }),
        deps.timeoutMs ?? SHARED_LIMIT_TIMEOUT_MS,
        'rate limit',
      ).then(
        (hit) => cb(null, pluginCount(hit, max, timeWindow)),
        (err: Error) => {
          if (Date.now() - warnedAt >= WARN_EVERY_MS) {
            warnedAt = Date.now();
            deps.log.warn({ err }, 'rate limit: the shared counter did not answer; requests go through uncounted');
          }
          cb(err);
        },
      );
    }

    child(): SharedRateLimitStore {
      return new SharedRateLimitStore();
    }
  };
}

export type StreamLeaseStore = Pick<ServiceStore, 'acquireStreamLease' | 'renewStreamLease' | 'releaseStreamLease'>;

/** A stream's place among its user's open streams; `release()` gives it back (once). */
export interface StreamLease {
  readonly leaseId: string;
  release(): void;
}

/**
 * Leases of open streams, at most `maxPerUser` live per user across every replica. A lease is renewed
 * every third of `ttlMs` while its socket is open; a replica that dies stops renewing and its leases
 * stop counting within `ttlMs`. A renewal that finds the lease gone (it expired: the database was out
 * of reach too long) calls `onLost`: the stream must end, its place may have been taken.
 */
export function createStreamLeases(deps: {
  store: StreamLeaseStore;
  maxPerUser: number;
  ttlMs: number;
  log: FastifyBaseLogger;
  timeoutMs?: number;
}) {
  const timeoutMs = deps.timeoutMs ?? SHARED_LIMIT_TIMEOUT_MS;
  const renewEveryMs = Math.max(100, Math.floor(deps.ttlMs / 3));

  async function acquire(userId: string, onLost: () => void): Promise<StreamLease | 'too_many' | 'unavailable'> {
    const leaseId = randomUUID();
    const lease = { userId, leaseId, max: deps.maxPerUser, ttlMs: deps.ttlMs };
    let outcome;
    try {
      outcome = await withTimeout(deps.store.acquireStreamLease(lease), timeoutMs, 'stream lease');
    } catch (err) {
      deps.log.warn({ err, userId }, 'stream: could not take a lease; refusing the stream (1013)');
      // It may still land after the timeout: give it back (else it expires by itself).
      deps.store.releaseStreamLease(leaseId).catch(() => undefined);
      return 'unavailable';
    }
    if (!outcome.acquired) return 'too_many';

    let released = false;
    let renewing = false;
    const timer = setInterval(() => {
      if (renewing || released) return;
      renewing = true;
      withTimeout(deps.store.renewStreamLease({ leaseId, ttlMs: deps.ttlMs }), timeoutMs, 'stream lease renewal')
        .then(
          (live) => {
            if (live || released) return;
            clearInterval(timer);
            deps.log.warn({ userId, leaseId }, 'stream: its lease expired before it was renewed');
            onLost();
          },
          (err: unknown) => deps.log.warn({ err, userId }, 'stream: renewing its lease failed; retrying'),
        )
        .finally(() => (renewing = false));
    }, renewEveryMs);
    timer.unref();

    return {
      leaseId,
      release() {
        if (released) return;
        released = true;
        clearInterval(timer);
        deps.store
          .releaseStreamLease(leaseId)
          .catch((err: unknown) =>
            deps.log.warn({ err, userId }, `stream: releasing its lease failed; it expires within ${deps.ttlMs} ms`),
          );
      },
    };
  }

  return { acquire };
}
export type StreamLeases = ReturnType<typeof createStreamLeases>;
