import type { AccessTokenProvider } from './api';
import type { MachineStatus } from './schemas';
import { machineStatusSchema } from './schemas';

export const EVENTS_PATH = '/v1/machines/me/events';

export interface MachineWatchHandlers {
  /** The machine's status at once and on every change; null: the user has no machine. */
  onStatus(status: MachineStatus | null): void;
  /** A read failed, the stream broke (it reconnects) or was refused (401/403/429: it stops). */
  onError?(detail: string, final: boolean): void;
}

export interface MachineWatch {
  close(): void;
}

/**
 * Follows `GET /v1/machines/me/events` (server-sent events) with `fetch`, because `EventSource` cannot
 * send an Authorization header. Reconnects after a break, waiting what the server's `retry:` says
 * (3 s) or longer while it keeps failing; the token is asked for again on each connect (it may have
 * been refreshed). An `expired` event or a 401/403 stops it: the page must sign in again.
 */
export function watchMachine(
  o: { url: string; getAccessToken: AccessTokenProvider; fetch?: typeof fetch },
  handlers: MachineWatchHandlers,
): MachineWatch {
  const doFetch = o.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  let closed = false;
  let controller: AbortController | undefined;
  let retryMs = 3_000;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const stop = (detail: string) => {
    closed = true;
    handlers.onError?.(detail, true);
  };
  const dispatch = (event: string, data: string) => {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return;
    }
    if (event === 'status') {
      const parsed = json === null ? null : machineStatusSchema.safeParse(json);
      if (parsed === null) handlers.onStatus(null);
      else if (parsed.success) handlers.onStatus(parsed.data);
      else handlers.onError?.(`the status event is not understood: ${parsed.error.message}`, false);
    } else if (event === 'error' || event === 'expired') {
      const detail = (json as { detail?: string } | null)?.detail ?? event;
      if (event === 'expired') stop(detail);
      else handlers.onError?.(detail, false);
    }
  };

  async function connect() {
    controller = new AbortController();
    try {
      const token = await o.getAccessToken();
      const res = await doFetch(o.url, {
        headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        signal: controller.signal,
      });
      if (res.status === 401 || res.status === 403 || res.status === 429) {
        const body = (await res.json().catch(() => null)) as { detail?: string } | null;
        return stop(body?.detail ?? `the events stream was refused (${res.status})`);
      }
      if (!res.ok || !res.body) throw new Error(`the events stream answered ${res.status}`);
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            else if (line.startsWith('retry:')) retryMs = Number(line.slice(6)) || retryMs;
          }
          if (data.length > 0) dispatch(event, data.join('\n'));
        }
      }
    } catch (err) {
      if (closed) return;
      failures++;
      handlers.onError?.(err instanceof Error ? err.message : String(err), false);
    }
    if (closed) return;
    timer = setTimeout(() => void connect(), Math.min(60_000, retryMs * 2 ** Math.min(failures, 4)));
  }
  void connect();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      controller?.abort();
    },
  };
}
