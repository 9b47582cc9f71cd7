/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface UntilOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Time between probes (default 100 ms). */
  everyMs?: number;
  /** Checked before each probe: a thrown error ends the wait at once (e.g. "the process exited"). */
  abortIf?: () => void;
}

/** The error message of a wait that timed out. */
const timedOut = (timeoutMs: number, what: string) => `timed out after ${timeoutMs} ms waiting for ${what}`;

/**
 * Polls `probe` until it returns something other than undefined, null or false, and returns it. A
 * probe that throws ends the wait with its error; on timeout the error names `what`.
 */
export async function until<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: UntilOptions | number = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 100, abortIf } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    abortIf?.();
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) break;
    await sleep(everyMs);
  }
  throw new Error(timedOut(timeoutMs, what));
}

/**
 * Polls `read` until `ok(value)` holds, and returns that value; on timeout the error also shows the
 * last value read. An error thrown by `read`, `ok` or `abortIf` ends the wait as it is.
 */
export async function untilValue<T>(
  what: string,
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  opts: UntilOptions | number = {},
): Promise<T> {
  let last: { value: T } | undefined;
  try {
    const probe = async () => {
      last = { value: await read() };
      return ok(last.value) && last;
    };
    return (await until(what, probe, opts)).value;
  } catch (error) {
    const timeoutMs = (typeof opts === 'number' ? opts : opts.timeoutMs) ?? 60_000;
    if (!(error instanceof Error) || error.message !== timedOut(timeoutMs, what)) throw error;
    throw new Error(`${error.message}; last ${JSON.stringify(last?.value)}`);
  }
}

/**
 * Waits for `promise` at most `timeoutMs`; on timeout the error names `what` and adds `explain()`'s
 * answer (e.g. the workflow's pending activities), so a hang says where it was instead of ending the
 * whole test at Jest's timeout.
 */
export async function within<T>(
  what: string,
  promise: Promise<T>,
  timeoutMs: number,
  explain?: () => Promise<string> | string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((done) => (timer = setTimeout(() => done('late'), timeoutMs)));
  try {
    const first = await Promise.race([promise.then((value) => ({ value })), late]);
    if (first !== 'late') return first.value;
  } finally {
    clearTimeout(timer);
  }
  const why = explain ? await Promise.resolve(explain()).catch((e: unknown) => `(explain failed: ${String(e)})`) : '';
  throw new Error(`${timedOut(timeoutMs, what)}${why ? `; ${why}` : ''}`);
}
