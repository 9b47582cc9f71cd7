import { setMaxListeners } from 'node:events';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { explainWorkflow } from './workflow-status';
import { sleep, within } from './wait';

/**
 * Driving workflow time on the time-skipping test server without meeting its known races.
 *
 * That server (the Java SDK's, as bundled) wedges a run when a message lands on the workflow task of a
 * timer that fires meanwhile: the task cancels the timer, whose fire is already buffered, and the
 * completion is refused with INVALID_ARGUMENT "invalid history builder state for action" (temporalio/sdk-java
 * #2606). The task then stays STARTED in history for ever, never timed out or redelivered (#3088), and keeps
 * its lock on time skipping: every later `env.sleep` and query hangs. A query that lands on a task that
 * continues as new is never answered either (the completion is refused with "workflow execution already
 * completed"). So a test sends its signals and queries at a quiet moment ({@link quietInstant}: well away
 * from a renewal, a grace end or any other timer), and bounds every call ({@link timeSkipping}).
 */

/** Instants a workflow's timers fire at: `from + k × every` (its renewals), and single ones (a grace end). */
export interface BusyTimes {
  grids?: { from: number; every: number }[];
  instants?: number[];
}

/** The first instant at or after `notBefore` that is at least `marginMs` away from every busy time. */
export function quietInstant(notBefore: number, busy: BusyTimes, marginMs: number): number {
  let t = notBefore;
  for (let moved = true, rounds = 0; moved; rounds++) {
    if (rounds > 100) throw new Error(`no quiet instant after ${new Date(notBefore).toISOString()}`);
    moved = false;
    for (const { from, every } of busy.grids ?? []) {
      if (every <= 2 * marginMs) throw new Error(`renewals every ${every} ms leave no ${marginMs} ms margin`);
      const phase = (((t - from) % every) + every) % every; // time since the last grid instant
      const next = t - phase + every;
      if (phase < marginMs) t += marginMs - phase;
      else if (next - t < marginMs) t = next + marginMs;
      else continue;
      moved = true;
    }
    for (const at of busy.instants ?? [])
      if (Math.abs(t - at) < marginMs) {
        t = at + marginMs;
        moved = true;
      }
  }
  return t;
}

const eventName = (type: temporal.api.enums.v1.EventType | null | undefined) =>
  (temporal.api.enums.v1.EventType[type ?? 0] ?? String(type))
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)(\w)/g, (_, __, c: string) => c.toUpperCase());

/** The last events of a workflow's current run, one line ("… → WorkflowTaskStarted at …"), for a timeout's error. */
export async function historyTail(handle: WorkflowHandle, count = 5): Promise<string> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .slice(-count)
    .map((e) => {
      const at = e.eventTime ? Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6) : 0;
      const why = e.workflowTaskFailedEventAttributes?.failure?.message;
      return `${eventName(e.eventType)}${why ? ` (${why})` : ''} at ${new Date(at).toISOString()}`;
    })
    .join(' → ');
}

export interface CallOptions {
  /** Give up after this long (real time); the call is then cancelled, so nothing is left pending. */
  timeoutMs?: number;
  /** Adds what the workflow is doing to the error (its status, pending activities, last events). */
  handle?: WorkflowHandle;
}

/**
 * Bounded, named calls to a time-skipping environment. Every call runs under a gRPC deadline and an abort
 * signal: one that hangs (on a wedged run) fails with where it was, and is cancelled there and then — never
 * left to be retried by the client's retry timer after the connection closes (which throws "Channel has
 * been shut down" into whatever test runs next in the Jest worker).
 */
export function timeSkipping(env: TestWorkflowEnvironment) {
  const { connection } = env;

  /** What a workflow is doing, for an error; itself bounded (a wedged run does not answer its query). */
  const explain = async (handle: WorkflowHandle) => {
    const bounded = <T>(fn: () => Promise<T>) => connection.withDeadline(Date.now() + 3000, fn);
    const [state, tail, now] = await Promise.all([
      bounded(() => explainWorkflow(handle)).catch((e: unknown) => `describe failed: ${String(e)}`),
      bounded(() => historyTail(handle)).catch((e: unknown) => `history failed: ${String(e)}`),
      bounded(() => env.currentTimeMs()).then(
        (ms) => new Date(ms).toISOString(),
        () => 'unknown',
      ),
    ]);
    return `${state}; last events: ${tail}; server time ${now}`;
  };

  async function call<T>(what: string, fn: () => Promise<T>, { timeoutMs = 15_000, handle }: CallOptions = {}) {
    const abort = new AbortController();
    setMaxListeners(0, abort.signal); // the client adds a listener per RPC (a poll makes many); all end with this call
    const running = connection.withDeadline(Date.now() + timeoutMs + 5000, () =>
      connection.withAbortSignal(abort.signal, fn),
    );
    running.catch(() => undefined); // after a timeout, its rejection (cancelled) is expected and seen by no one
    try {
      return await within(what, running, timeoutMs, handle ? () => explain(handle) : undefined);
    } finally {
      abort.abort();
    }
  }

  const now = () => call('the server time', () => env.currentTimeMs(), { timeoutMs: 5000 });

  /** Skips workflow time to `instant` (nothing if it has passed); `what` names the wait in its error. */
  async function skipTo(what: string, instant: number, opts: CallOptions = {}) {
    const wait = instant - (await now());
    if (wait > 0) await call(`time to skip to ${what}`, () => env.sleep(wait), { timeoutMs: 30_000, ...opts });
  }

  /** Waits in real time (nothing skips meanwhile) until the workflow's current run has closed. */
  async function untilClosed(handle: WorkflowHandle, { timeoutMs = 30_000 }: { timeoutMs?: number } = {}) {
    const closed = async () => {
      for (;;) {
        const { status } = await connection.withDeadline(Date.now() + 5000, () => handle.describe());
        if (status.name !== 'RUNNING') return status.name;
        await sleep(100);
      }
    };
    return call('the workflow to close', closed, { timeoutMs, handle });
  }

  return { call, now, skipTo, untilClosed, explain };
}

/**
 * A time-skipping server per test, stopped with a bound after it: a run that a failed test leaves wedged
 * keeps its server from skipping time, so the next test (or Jest's retry) gets a new one. Call it in a
 * `describe`; read `env` and `ts` inside tests.
 */
export function timeSkippingServerPerTest(create: () => Promise<TestWorkflowEnvironment>) {
  let current: { env: TestWorkflowEnvironment; ts: ReturnType<typeof timeSkipping> } | undefined;
  beforeEach(async () => {
    const env = await create();
    current = { env, ts: timeSkipping(env) };
  });
  afterEach(async () => {
    const stopping = current?.env.teardown();
    current = undefined;
    if (stopping) await within('the time-skipping server to stop', stopping, 20_000);
  });
  const now = () => {
    if (!current) throw new Error('no time-skipping server outside a test');
    return current;
  };
  return {
    get env() {
      return now().env;
    },
    get ts() {
      return now().ts;
    },
  };
}
