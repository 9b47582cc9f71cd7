import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { AuthenticatedUser } from './auth';
import { HttpProblem } from './problem';

/** States in which something is about to change: the watcher looks more often. */
const CHANGING = new Set(['provisioning', 'starting', 'stopping']);

export interface MachineWatchOptions {
  /** What GET /v1/machines/me answers (null: no machine). */
  status: (userId: string) => Promise<unknown>;
  /** Poll period while the machine is changing (default 1 s). */
  fastMs?: number;
  /** Poll period otherwise (default 5 s). */
  slowMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 20 s). */
  keepAliveMs?: number;
  /** Open event streams one user may have on this API process (default 20). */
  maxPerUser?: number;
}

type Listener = (event: 'status' | 'error', data: unknown) => void;

interface Watch {
  listeners: Set<Listener>;
  last: string | undefined;
  timer: NodeJS.Timeout | undefined;
  polling: boolean;
}

/**
 * One status poller per user per API process, shared by all of that user's open pages: any number of
 * tabs costs one status read per period, and none of them spends the user's rate limit after connecting.
 * Each listener hears the current status at once and then every change. `poke(userId)` polls now (after
 * this process started or stopped the user's machine). With no listener left, the poller stops.
 */
export function createMachineWatcher(o: MachineWatchOptions) {
  const fastMs = o.fastMs ?? 1_000;
  const slowMs = o.slowMs ?? 5_000;
  const watches = new Map<string, Watch>();

  const schedule = (userId: string, w: Watch, ms: number) => {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => void poll(userId, w), ms);
    w.timer.unref();
  };
  async function poll(userId: string, w: Watch) {
    if (w.polling) return;
    w.polling = true;
    let next = slowMs;
    try {
      const status = await o.status(userId);
      const text = JSON.stringify(status);
      const state = (status as { state?: string } | null)?.state;
      if (state && CHANGING.has(state)) next = fastMs;
      if (text !== w.last) {
        w.last = text;
        for (const l of w.listeners) l('status', status);
      }
    } catch (err) {
      for (const l of w.listeners) l('error', { detail: err instanceof Error ? err.message : String(err) });
    } finally {
      w.polling = false;
      if (watches.get(userId) === w) schedule(userId, w, next);
    }
  }

  return {
    subscribe(userId: string, listener: Listener): () => void {
      let w = watches.get(userId);
      if (!w) {
        w = { listeners: new Set(), last: undefined, timer: undefined, polling: false };
        watches.set(userId, w);
        w.listeners.add(listener);
        void poll(userId, w);
      } else {
        w.listeners.add(listener);
        if (w.last !== undefined) listener('status', JSON.parse(w.last));
      }
      const watch = w;
      return () => {
        watch.listeners.delete(listener);
        if (watch.listeners.size === 0 && watches.get(userId) === watch) {
          clearTimeout(watch.timer);
          watches.delete(userId);
        }
      };
    },
    listeners: (userId: string) => watches.get(userId)?.listeners.size ?? 0,
    /** Polls now: the caller just changed this user's machine. */
    poke(userId: string) {
      const w = watches.get(userId);
      if (w) schedule(userId, w, 0);
    },
    close() {
      for (const w of watches.values()) clearTimeout(w.timer);
      watches.clear();
    },
  };
}
export type MachineWatcher = ReturnType<typeof createMachineWatcher>;

/**
 * `GET /v1/machines/me/events`: server-sent events, `event: status` with what GET /v1/machines/me
 * answers (null: no machine) at once and on every change, `event: error` when a read failed (the stream
 * stays open), `event: expired` when the access token expires (then the stream ends: sign in again).
 * The connection counts once against the status budget; a reconnecting page waits the `retry` it gets.
 */
export function registerMachineEventsRoute(
  app: FastifyInstance,
  deps: {
    route: RouteShorthandOptions;
    userOf: (req: FastifyRequest) => AuthenticatedUser;
    watcher: MachineWatcher;
    keepAliveMs?: number;
    maxPerUser?: number;
  },
) {
  const open = new Set<FastifyReply>();
  const perUser = new Map<string, number>();
  const maxPerUser = deps.maxPerUser ?? 20;
  app.addHook('preClose', async () => {
    for (const reply of open) reply.raw.end();
  });

  app.get('/v1/machines/me/events', deps.route, async (req, reply) => {
    const user = deps.userOf(req);
    const count = perUser.get(user.id) ?? 0;
    if (count >= maxPerUser)
      throw new HttpProblem(429, `too many open event streams: at most ${maxPerUser} per user; close a tab`);
    perUser.set(user.id, count + 1);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // proxies that buffer (nginx) would hold events back
      'x-request-id': String(req.id),
    });
    const write = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 3000\n\n');
    open.add(reply);
    const unsubscribe = deps.watcher.subscribe(user.id, write);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), deps.keepAliveMs ?? 20_000);
    const expiry = setTimeout(
      () => {
        write('expired', { detail: 'your access token expired: sign in again' });
        res.end();
      },
      Math.max(0, Math.min(user.expiresAt - Date.now(), 2 ** 31 - 1)),
    );
    res.on('close', () => {
      clearInterval(keepAlive);
      clearTimeout(expiry);
      unsubscribe();
      open.delete(reply);
      const left = (perUser.get(user.id) ?? 1) - 1;
      if (left > 0) perUser.set(user.id, left);
      else perUser.delete(user.id);
    });
  });
}
