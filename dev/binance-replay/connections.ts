import type { RawData, WebSocket } from 'ws';
import type { z } from 'zod';
import { INTERVALS } from './candles';
import type { ReplayFaults } from './server';

/**
 * The WebSocket connections: what one connection is, sending to it (with the injected faults: drops, malformed
 * frames, stalls, server shutdown), Binance's per-connection limits, pings and pongs, and the connection lifetime.
 */

/** Binance's limits (reference doc §1). */
export const MAX_STREAMS_PER_CONNECTION = 1024;
const MAX_INCOMING_PER_SECOND = 5;
/** Messages held for a stalled connection in paced mode before it is dropped as a slow consumer. */
const MAX_STALL_QUEUE = 100_000;

export const KLINE_STREAM = new RegExp(`^([a-z0-9]+)@kline_(${INTERVALS.join('|')})$`);
/** Well-formed Binance stream names. Only `<symbol>@kline_<interval>` carries data here; others are accepted silently. */
export const VALID_STREAM = new RegExp(
  `^(?:[a-z0-9]+@(?:kline_(?:${INTERVALS.join('|')})(?:@\\+08:00)?|aggTrade|trade|miniTicker|ticker|ticker_(?:1h|4h|1d)` +
    `|bookTicker|avgPrice|depth(?:5|10|20)?(?:@(?:100|1000)ms)?)|!(?:miniTicker@arr|ticker@arr|ticker_(?:1h|4h|1d)@arr|bookTicker))$`,
);

export interface Conn {
  ws: WebSocket;
  combined: boolean;
  micro: boolean;
  streams: Set<string>;
  dataSent: number;
  incoming: number[];
  stalledUntil: number;
  queue: { msg: string; isClose: boolean }[];
  dead: boolean;
  outstandingPings: Set<string>;
  timers: NodeJS.Timeout[];
  pongTimer?: NodeJS.Timeout;
}

/** What a connection's streams and control messages go to (the clock and control.ts). */
export interface ConnectionHandlers {
  subscribe(conn: Conn, names: string[]): void;
  unsubscribe(conn: Conn, names: string[]): void;
  onControl(conn: Conn, text: string): void;
}

export interface ConnectionsOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
  maxConnectionMs: number;
  faultsSchema: z.ZodType<ReplayFaults>;
  /** The replay clock as it stands (the serverShutdown event's time). */
  clockMs: () => number;
  /** A stall ended and its held events went out: the clock may move on. */
  onStallEnd: () => void;
}

export type Connections = ReturnType<typeof createConnections>;

export function createConnections(opts: ConnectionsOptions) {
  const { pingIntervalMs, pongTimeoutMs, maxConnectionMs, faultsSchema, clockMs, onStallEnd } = opts;
  const conns = new Set<Conn>();
  const counters = { messagesSent: 0, closedCandlesSent: 0 };
  let faults: ReplayFaults = {};
  let shutdownTimer: NodeJS.Timeout | undefined;

  const rawSend = (conn: Conn, msg: string, cb?: () => void): void => {
    counters.messagesSent++;
    conn.ws.send(msg, cb);
  };

  const drop = (conn: Conn): void => {
    if (conn.dead) return;
    conn.dead = true;
    conn.ws.terminate();
  };

  const stall = (conn: Conn, ms: number): void => {
    conn.stalledUntil = Date.now() + ms;
    conn.timers.push(
      setTimeout(() => {
        conn.stalledUntil = 0;
        const queued = conn.queue;
        conn.queue = [];
        for (const q of queued) {
          if (conn.dead) break;
          sendData(conn, q.msg, q.isClose);
        }
        onStallEnd();
      }, ms),
    );
  };

  const sendData = (conn: Conn, msg: string, isClose: boolean): void => {
    conn.dataSent++;
    const n = conn.dataSent;
    // The malformed frame is sent in addition to the real event, so a client that skips it loses nothing.
    if (faults.malformedEvery && n % faults.malformedEvery === 0)
      rawSend(conn, msg.slice(0, Math.floor(msg.length / 2)));
    if (faults.dropEvery && n % faults.dropEvery === 0) {
      conn.dead = true; // nothing more is sent; the socket is cut once this message is written
      rawSend(conn, msg, () => conn.ws.terminate());
      if (isClose) counters.closedCandlesSent++;
      return;
    }
    rawSend(conn, msg);
    if (isClose) counters.closedCandlesSent++;
    if (faults.stallEvery && faults.stallMs && n % faults.stallEvery === 0) stall(conn, faults.stallMs);
  };

  /** An event for one subscriber: sent, or held while the connection is stalled. */
  const deliver = (conn: Conn, msg: string, isClose: boolean): void => {
    if (conn.stalledUntil > Date.now()) {
      if (conn.queue.length >= MAX_STALL_QUEUE) return drop(conn);
      conn.queue.push({ msg, isClose });
      return;
    }
    sendData(conn, msg, isClose);
  };

  const sendShutdown = (): void => {
    shutdownTimer = undefined;
    faults = { ...faults, serverShutdownAfterMs: undefined };
    const data = JSON.stringify({ e: 'serverShutdown', E: Math.floor(clockMs()) });
    for (const conn of conns) {
      if (conn.dead) continue;
      rawSend(conn, conn.combined ? `{"stream":"!serverShutdown","data":${data}}` : data);
      conn.dead = true;
      conn.ws.close(1001, 'server shutdown');
    }
  };

  const setFaults = (f: ReplayFaults): void => {
    faults = faultsSchema.parse(f);
    if (shutdownTimer) clearTimeout(shutdownTimer);
    shutdownTimer = undefined;
    if (faults.serverShutdownAfterMs !== undefined)
      shutdownTimer = setTimeout(sendShutdown, faults.serverShutdownAfterMs);
    // stallMs alone is a one-off stall of every current connection, starting now.
    if (faults.stallMs && !faults.stallEvery) for (const c of conns) stall(c, faults.stallMs);
  };

  const reply = (conn: Conn, body: object): void => {
    if (!conn.dead) rawSend(conn, JSON.stringify(body));
  };
  const replyError = (conn: Conn, code: number, msg: string, id: unknown): void =>
    reply(conn, { error: { code, msg }, id: id ?? null });

  /** 5 incoming messages per second, pings and pongs included; over it, Binance disconnects. */
  const countIncoming = (conn: Conn): boolean => {
    const now = Date.now();
    conn.incoming = conn.incoming.filter((t) => now - t < 1000);
    conn.incoming.push(now);
    if (conn.incoming.length > MAX_INCOMING_PER_SECOND) {
      conn.dead = true;
      conn.ws.close(1008, 'Too many requests');
      conn.timers.push(setTimeout(() => conn.ws.terminate(), 1000));
      return false;
    }
    return true;
  };

  /** A new WebSocket on `/stream?streams=…` (combined) or `/ws/<stream>` (raw). */
  const open = (ws: WebSocket, url: URL, { subscribe, unsubscribe, onControl }: ConnectionHandlers): void => {
    const combined = url.pathname.startsWith('/stream');
    const fromUrl = combined
      ? (url.searchParams.get('streams') ?? '').split('/').filter(Boolean)
      : decodeURIComponent(url.pathname.slice('/ws'.length)).split('/').filter(Boolean);
    const conn: Conn = {
      ws,
      combined,
      micro: (url.searchParams.get('timeUnit') ?? '').toUpperCase() === 'MICROSECOND',
      streams: new Set(),
      dataSent: 0,
      incoming: [],
      stalledUntil: 0,
      queue: [],
      dead: false,
      outstandingPings: new Set(),
      timers: [],
    };
    conns.add(conn);
    ws.on('error', () => drop(conn)); // a broken socket ends in 'close', handled below
    ws.on('close', () => {
      conn.dead = true;
      conns.delete(conn);
      conn.timers.forEach(clearTimeout);
      if (conn.pongTimer) clearTimeout(conn.pongTimer);
      unsubscribe(conn, [...conn.streams]);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (conn.dead || !countIncoming(conn)) return;
      if (isBinary) return replyError(conn, 3, 'Invalid JSON: expected value at line 1 column 1', null);
      onControl(conn, Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
    });
    ws.on('ping', () => {
      countIncoming(conn); // ws answers with the same payload by itself
    });
    ws.on('pong', (payload: Buffer) => {
      if (!countIncoming(conn)) return;
      // Only a pong echoing one of our pings keeps the connection alive, as on Binance.
      if (conn.outstandingPings.delete(payload.toString()) && conn.outstandingPings.size === 0 && conn.pongTimer) {
        clearTimeout(conn.pongTimer);
        conn.pongTimer = undefined;
      }
    });

    const pinger = setInterval(() => {
      if (conn.dead || conn.stalledUntil > Date.now()) return;
      const payload = String(Date.now());
      conn.outstandingPings.add(payload);
      ws.ping(payload);
      conn.pongTimer ??= setTimeout(() => drop(conn), pongTimeoutMs);
    }, pingIntervalMs);
    conn.timers.push(pinger);
    conn.timers.push(setTimeout(() => ws.close(1001, 'connection lifetime reached'), maxConnectionMs));

    if (!fromUrl.every((s) => VALID_STREAM.test(s)) || fromUrl.length > MAX_STREAMS_PER_CONNECTION) {
      replyError(conn, 2, 'Invalid request: invalid stream', null);
      conn.dead = true;
      ws.close(1008, 'invalid stream');
      return;
    }
    subscribe(conn, fromUrl);
  };

  return {
    conns,
    deliver,
    reply,
    replyError,
    setFaults,
    faults: (): ReplayFaults => faults,
    open,
    dropAll: (): void => {
      for (const c of conns) drop(c);
    },
    stats: () => ({ connections: [...conns].filter((c) => !c.dead).length, ...counters }),
    close: (): void => {
      if (shutdownTimer) clearTimeout(shutdownTimer);
      for (const c of conns) {
        c.timers.forEach(clearTimeout);
        if (c.pongTimer) clearTimeout(c.pongTimer);
        c.ws.terminate();
      }
      conns.clear();
    },
  };
}
