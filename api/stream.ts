import type { FastifyBaseLogger } from 'fastify';
import WebSocket, { type RawData } from 'ws';
import { mintMachineAccessToken } from '../common/credentials';
import { type FlyClient } from '../fly/client';
import { machineAddress } from '../fly/machines';
import type { ApiMetrics } from './metrics';
import type { MachineService } from './machines';
import type { StreamLease, StreamLeases } from './shared-limits';
import { atTime, closeWithin, MAX_CLIENT_FRAME_BYTES, rawByteLength, rawToString, tokenBucket } from './stream-limits';

/** The runtime's internal port on Fly (fly-local maps it to the process's own port). */
export const RUNTIME_INTERNAL_PORT = 8080;
/** Close codes sent to the browser (4000–4999 are the application's). */
export const CLOSE = {
  noMachine: 4404,
  tooManyStreams: 4429,
  /** RFC 6455 "try again later": the open streams could not be counted (database out of reach), or a lease was lost. */
  tryAgainLater: 1013,
  machineUnreachable: 4502,
  machineGone: 4503,
  /** The access token the stream was opened with has expired: reconnect with a fresh one. */
  tokenExpired: 4401,
  /** RFC 6455: a policy violation (too many frames; a side too slow to take what is sent to it). */
  policy: 1008,
  /** RFC 6455: a frame larger than the gateway takes from a browser. */
  tooBig: 1009,
} as const;
const MAX_PENDING_TO_MACHINE = 16;
const PING_INTERVAL_MS = 30_000;

export interface StreamGatewayDeps {
  machines: MachineService;
  fly: FlyClient;
  jwtSecret: string;
  metrics: ApiMetrics;
  log: FastifyBaseLogger;
  /** Bytes unsent toward either side of one link before it is closed (both directions). */
  maxBufferedBytes: number;
  maxPerUser: number;
  /** The per-user stream cap's leases, shared by every replica (Postgres). */
  leases: StreamLeases;
  /** Frames per second a browser may send (a token bucket); default 20. */
  maxMessagesPerSecond?: number;
  /** Frames a browser may send at once (the bucket's size); default twice the rate. */
  messageBurst?: number;
}

/**
 * Relays one browser socket to the user's own machine. The machine is found from the caller's own
 * workflow (never from anything the client sends), and the gateway presents a freshly minted stream
 * token signed with that machine's key: the user's Supabase token never leaves the API.
 */
export function createStreamGateway(deps: StreamGatewayDeps) {
  const open = new Set<WebSocket>();

  async function machineOrigin(userId: string): Promise<string | null> {
    const machineId = await deps.machines.runningMachineId(userId);
    if (!machineId) return null;
    const machine = await deps.fly.getMachine(machineId);
    // Defence in depth: the Fly machine must carry this user's tag, whatever the workflow says.
    if (machine.config?.metadata?.user_id !== userId || machine.state !== 'started') return null;
    return machineAddress(machine, RUNTIME_INTERNAL_PORT).origin;
  }

  /** `expiresAt`: when the token the stream was opened with expires (ms); the stream closes then. */
  async function handle(client: WebSocket, userId: string, expiresAt?: number) {
    open.add(client);
    // Set once the lease is taken (below): the stream counts against its user on every replica.
    const held: { lease?: StreamLease } = {};
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      open.delete(client);
      if (held.lease) deps.metrics.streams.dec();
      held.lease?.release();
    };

    // Frames the browser sends before the machine answers wait here, a few at most.
    const pending: string[] = [];
    let pendingBytes = 0;
    // Set once the machine is found; the client's handlers below may run before that.
    const link: { upstream?: WebSocket } = {};
    // Set when the browser has gone or is being closed: nothing more is taken from it or dialled for it.
    let done = false;
    /** Closes the stream for a broken bound or an expired token (once); a violation cuts the machine off. */
    const end = (code: number, reason: string, outcome: string, cutMachine = true) => {
      if (done) return;
      done = true;
      deps.metrics.streamsOpened.inc({ outcome });
      deps.log.info({ userId, code, reason }, 'stream: closing');
      closeWithin(client, code, reason);
      // Its buffer is dropped at once (a close frame would wait behind it); else it closes with the browser.
      if (cutMachine) link.upstream?.terminate();
    };
    client.on('close', () => {
      done = true;
      release();
      const up = link.upstream;
      if (up?.readyState === WebSocket.CONNECTING) up.terminate();
      else up?.close(1000, 'client closed');
    });
    // A protocol error (a frame past the plugin's maxPayload: 1009, bad UTF-8: 1007): `ws` has already
    // sent its close; cutting the socket now could lose that close, so the peer gets the grace period.
    client.on('error', () => closeWithin(client, CLOSE.policy, 'protocol error'));
    /** Bytes unsent toward a side, plus a frame, over the bound (an empty buffer always takes one frame). */
    const overBound = (queued: number, size: number) => queued > 0 && queued + size > deps.maxBufferedBytes;
    // Browser → machine is bounded like machine → browser: a rate, a frame size, the bytes waiting.
    const rate = deps.maxMessagesPerSecond ?? 20;
    const bucket = tokenBucket(rate, deps.messageBurst ?? rate * 2);
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (done) return;
      if (!bucket.take())
        return end(CLOSE.policy, `too many messages: at most ${rate} per second`, 'too_many_messages');
      const size = rawByteLength(data);
      if (size > MAX_CLIENT_FRAME_BYTES)
        return end(CLOSE.tooBig, `message too big: at most ${MAX_CLIENT_FRAME_BYTES} bytes`, 'message_too_big');
      if (isBinary) return; // the runtime speaks JSON text only
      const up = link.upstream?.readyState === WebSocket.OPEN ? link.upstream : undefined;
      if (overBound(up ? up.bufferedAmount : pendingBytes, size))
        return end(CLOSE.policy, 'upstream buffer full: your machine reads too slowly', 'dropped_slow_machine');
      const text = rawToString(data);
      if (up) {
        deps.metrics.streamFrames.inc({ direction: 'to_machine' });
        up.send(text);
      } else if (pending.length < MAX_PENDING_TO_MACHINE) {
        pending.push(text);
        pendingBytes += size;
      }
    });

    // A stream lives no longer than the token it was opened with.
    if (expiresAt !== undefined) {
      const cancel = atTime(expiresAt, () =>
        end(CLOSE.tokenExpired, 'token expired: reconnect with a fresh one', 'token_expired', false),
      );
      client.once('close', cancel);
    }

    // A browser that vanished without a close (sleeping laptop) is noticed and let go.
    let alive = true;
    client.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) return client.terminate();
      alive = false;
      client.ping();
    }, PING_INTERVAL_MS);
    ping.unref();
    client.once('close', () => clearInterval(ping));

    // The user's cap holds across replicas: a lease in Postgres, renewed while the socket is open.
    const taken = await deps.leases.acquire(userId, () =>
      end(CLOSE.tryAgainLater, 'your stream lost its place: reconnect', 'lease_lost', false),
    );
    if (taken === 'unavailable') {
      deps.metrics.streamsOpened.inc({ outcome: 'lease_unavailable' });
      client.close(CLOSE.tryAgainLater, 'cannot count your open streams right now: try again later');
      return;
    }
    if (taken === 'too_many') {
      deps.metrics.streamsOpened.inc({ outcome: 'too_many' });
      client.close(CLOSE.tooManyStreams, `at most ${deps.maxPerUser} streams per user`);
      return;
    }
    if (released) return taken.release(); // the browser left while the lease was taken
    held.lease = taken;
    deps.metrics.streams.inc();

    let origin: string | null;
    try {
      origin = await machineOrigin(userId);
    } catch (err) {
      deps.log.warn({ err, userId }, 'stream: looking up the machine failed');
      deps.metrics.streamsOpened.inc({ outcome: 'lookup_failed' });
      client.close(CLOSE.machineUnreachable, 'could not look up your machine');
      return;
    }
    if (!origin) {
      deps.metrics.streamsOpened.inc({ outcome: 'no_machine' });
      client.close(CLOSE.noMachine, 'you have no running machine');
      return;
    }
    if (done) return;

    const token = await mintMachineAccessToken({
      jwtSecret: deps.jwtSecret,
      userId,
      purpose: 'stream',
      ttlSeconds: 60,
    });
    if (done) return; // left (or was closed) while the token was minted
    const up = new WebSocket(`${origin.replace(/^http/, 'ws')}/ws`, {
      headers: { authorization: `Bearer ${token}` },
      handshakeTimeout: 10_000,
      maxPayload: 1 << 20,
    });
    link.upstream = up;
    let opened = false;
    up.on('open', () => {
      opened = true;
      deps.metrics.streamsOpened.inc({ outcome: 'connected' });
      for (const text of pending.splice(0)) up.send(text);
      pendingBytes = 0;
    });
    up.on('message', (data: RawData, isBinary: boolean) => {
      if (client.readyState !== WebSocket.OPEN || done) return;
      // Bounded buffering: a browser that cannot keep up is closed, not buffered for without limit.
      if (overBound(client.bufferedAmount, rawByteLength(data)))
        return end(CLOSE.policy, 'downstream buffer full: your connection reads too slowly', 'dropped_slow');
      deps.metrics.streamFrames.inc({ direction: 'to_client' });
      client.send(isBinary ? data : rawToString(data), { binary: isBinary });
    });
    up.on('unexpected-response', (_req, res) => {
      deps.log.warn({ userId, status: res.statusCode }, 'stream: the machine refused the gateway');
      deps.metrics.streamsOpened.inc({ outcome: 'machine_refused' });
      client.close(CLOSE.machineUnreachable, 'your machine refused the connection');
      up.terminate();
    });
    up.on('error', (err) => {
      if (!opened) {
        deps.log.warn({ err, userId }, 'stream: could not reach the machine');
        deps.metrics.streamsOpened.inc({ outcome: 'machine_unreachable' });
      }
      if (client.readyState === WebSocket.OPEN) client.close(CLOSE.machineUnreachable, 'your machine is unreachable');
    });
    up.on('close', (code: number, reason: Buffer) => {
      if (client.readyState !== WebSocket.OPEN) return;
      // 1000/1001 and application codes pass through; anything else (1006: the machine died) is ours.
      const passes = code === 1000 || code === 1001 || (code >= 4000 && code < 5000);
      client.close(passes ? code : CLOSE.machineGone, passes ? reason.toString() : 'your machine went away');
    });
  }

  return {
    handle,
    openCount: () => open.size,
    /** On shutdown: tell every browser to reconnect later. */
    closeAll() {
      for (const ws of open) ws.close(1001, 'server shutting down');
    },
  };
}
