import type WebSocket from 'ws';
import type { RawData } from 'ws';

/**
 * The largest frame a browser may send on a stream; larger closes the stream with 1009 and a reason.
 * The websocket plugin's `maxPayload` (app.ts, 64 KB) is a ceiling above it, so the gateway sees a
 * 4–64 KB frame and says why it closes; past 64 KB `ws` closes 1009 itself (no reason), on the
 * frame's header, before buffering it.
 */
export const MAX_CLIENT_FRAME_BYTES = 4 * 1024;
/** After a close for a broken bound, how long the peer has to answer it before it is cut off. */
export const CLOSE_GRACE_MS = 5_000;
/** setTimeout's longest delay (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A token bucket: `burst` frames at once, refilled at `ratePerSecond`. `take()` is false when the
 * bucket is empty (the frame is over the rate).
 */
export function tokenBucket(ratePerSecond: number, burst: number, now: () => number = Date.now) {
  let tokens = burst;
  let refilledAt = now();
  return {
    take(): boolean {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - refilledAt) / 1000) * ratePerSecond);
      refilledAt = t;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}

/** Calls `fn` at `at` (ms since the epoch), however far off; returns a cancel. */
export function atTime(at: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const wait = at - Date.now();
    if (wait <= 0) return fn();
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** Closes a socket with a code and reason, and cuts it off if the peer has not answered in `graceMs`. */
export function closeWithin(ws: WebSocket, code: number, reason: string, graceMs = CLOSE_GRACE_MS) {
  if (ws.readyState === ws.CLOSED) return;
  if (ws.readyState === ws.OPEN) ws.close(code, reason);
  const cutoff = setTimeout(() => ws.terminate(), graceMs);
  cutoff.unref();
  ws.once('close', () => clearTimeout(cutoff));
}

export function rawByteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

export function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
