import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { type Candle, DataIndex, type Interval, INTERVALS, isInterval, partialAt, resolveDataDir } from './candles';

export { type Candle, DataDirMissingError, loadCandles } from './candles';

export interface ReplayFaults {
  dropEvery?: number;
  stallMs?: number;
  stallEvery?: number;
  malformedEvery?: number;
  serverShutdownAfterMs?: number;
}

export interface ReplayOptions {
  dataDir: string; // folder of recorded CSVs (SYMBOL-INTERVAL-*.csv)
  port?: number; // 0 = free port
  speed?: number; // replay speed: candles of 1m per real second multiplier; 0 or Infinity = as fast as possible
  updatesPerCandle?: number; // in-progress kline updates sent before each close (default 2)
  startTime?: number; // ms epoch where the replay clock starts (default: first candle of the data)
  faults?: ReplayFaults;
  symbols?: string[]; // restrict what is loaded (default all files found)
  /** Additions to the shared interface, for tests and containers. */
  host?: string; // default 127.0.0.1
  pingIntervalMs?: number; // default 20 s, as Binance
  pongTimeoutMs?: number; // default 60 s, as Binance
  maxConnectionMs?: number; // default 24 h, as Binance
}

export interface BinanceReplay {
  wsUrl: string;
  restUrl: string;
  clock(): number;
  setFaults(f: ReplayFaults): void;
  dropAll(): void;
  stats(): { connections: number; messagesSent: number; closedCandlesSent: number };
  close(): Promise<void>;
}

const positiveInt = z.number().int().positive();
export const faultsSchema = z
  .object({
    dropEvery: positiveInt.optional(),
    stallMs: positiveInt.optional(),
    stallEvery: positiveInt.optional(),
    malformedEvery: positiveInt.optional(),
    serverShutdownAfterMs: z.number().int().min(0).optional(),
  })
  .strict();

/** Binance's limits (reference doc §1). */
const MAX_STREAMS_PER_CONNECTION = 1024;
const MAX_INCOMING_PER_SECOND = 5;
/** Above this many buffered bytes on any subscriber the shared clock waits: no unbounded buffering. */
const HIGH_WATER_BYTES = 1 << 20;
/** Messages held for a stalled connection in paced mode before it is dropped as a slow consumer. */
const MAX_STALL_QUEUE = 100_000;
/** Events emitted per pump before yielding to the event loop, so control messages and REST stay served. */
const BATCH = 2000;
const TICK_MS = 20;
const TRADE_ID_BASE = 1_000_000;

const KLINE_STREAM = new RegExp(`^([a-z0-9]+)@kline_(${INTERVALS.join('|')})$`);
/** Well-formed Binance stream names. Only `<symbol>@kline_<interval>` carries data here; others are accepted silently. */
const VALID_STREAM = new RegExp(
  `^(?:[a-z0-9]+@(?:kline_(?:${INTERVALS.join('|')})(?:@\\+08:00)?|aggTrade|trade|miniTicker|ticker|ticker_(?:1h|4h|1d)` +
    `|bookTicker|avgPrice|depth(?:5|10|20)?(?:@(?:100|1000)ms)?)|!(?:miniTicker@arr|ticker@arr|ticker_(?:1h|4h|1d)@arr|bookTicker))$`,
);

const fmt = (n: number) => n.toFixed(8);

interface Conn {
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

/** One kline stream with at least one subscriber, and where it stands on the shared clock. */
interface ActiveStream {
  name: string;
  symbol: string;
  interval: Interval;
  candles: Candle[];
  firstIds: Float64Array;
  idx: number;
  step: number;
  subs: Set<Conn>;
}

class BinanceError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    msg: string,
  ) {
    super(msg);
  }
}

/** Starts the replay: HTTP (REST + admin) and WebSocket on one port. */
export async function createBinanceReplay(opts: ReplayOptions): Promise<BinanceReplay> {
  const index = new DataIndex(resolveDataDir(opts.dataDir), opts.symbols);
  const speed = opts.speed ?? 60;
  const fast = speed === 0 || !Number.isFinite(speed);
  const updates = Math.max(0, Math.floor(opts.updatesPerCandle ?? 2));
  const pingIntervalMs = opts.pingIntervalMs ?? 20_000;
  const pongTimeoutMs = opts.pongTimeoutMs ?? 60_000;
  const maxConnectionMs = opts.maxConnectionMs ?? 24 * 3600_000;
  const host = opts.host ?? '127.0.0.1';

  let faults: ReplayFaults = {};
  let shutdownTimer: NodeJS.Timeout | undefined;
  let clockMs = opts.startTime ?? index.firstOpenTime() ?? Date.now();
  let lastReal = performance.now();
  let pumping = false;
  let pumpScheduled = false;
  let closed = false;
  const conns = new Set<Conn>();
  const active = new Map<string, ActiveStream>();
  const idsCache = new WeakMap<Candle[], Float64Array>();
  const counters = { messagesSent: 0, closedCandlesSent: 0 };
  let weight = { minute: 0, used: 0 };

  // ---- the shared clock and the event pump ----

  const eventTime = (s: ActiveStream, step: number): number => {
    const c = s.candles[s.idx];
    if (!c) return Infinity;
    const dur = c.closeTime + 1 - c.openTime;
    return step < updates ? c.openTime + Math.floor((dur * (step + 1)) / (updates + 1)) : c.openTime + dur;
  };

  const firstIdsOf = (candles: Candle[]): Float64Array => {
    let ids = idsCache.get(candles);
    if (!ids) {
      ids = new Float64Array(candles.length);
      let next = TRADE_ID_BASE;
      candles.forEach((c, i) => {
        (ids as Float64Array)[i] = next;
        next += c.trades;
      });
      idsCache.set(candles, ids);
    }
    return ids;
  };

  /** Positions a stream on its first event strictly after the clock: no history over WS, as on Binance. */
  const activate = (name: string, symbol: string, interval: Interval): ActiveStream => {
    const candles = index.series(symbol, interval);
    let lo = 0;
    let hi = candles.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((candles[mid] as Candle).closeTime < clockMs) lo = mid + 1;
      else hi = mid;
    }
    const s: ActiveStream = {
      name,
      symbol,
      interval,
      candles,
      firstIds: firstIdsOf(candles),
      idx: lo,
      step: 0,
      subs: new Set(),
    };
    while (s.step < updates && eventTime(s, s.step) <= clockMs) s.step++;
    active.set(name, s);
    return s;
  };

  const blocked = (): boolean => {
    for (const c of conns) {
      if (c.dead || c.streams.size === 0) continue;
      if (c.ws.bufferedAmount > HIGH_WATER_BYTES) return true;
      // In fast mode a stalled client is a socket that does not drain: the clock waits for it.
      if (fast && c.stalledUntil > Date.now()) return true;
    }
    return false;
  };

  const nextStream = (): ActiveStream | undefined => {
    let best: ActiveStream | undefined;
    let bestT = Infinity;
    for (const s of active.values()) {
      const t = eventTime(s, s.step);
      // Ties go to the lower stream name so interleaving is deterministic.
      if (t < bestT || (t === bestT && best && s.name < best.name)) {
        best = s;
        bestT = t;
      }
    }
    return best && bestT !== Infinity ? best : undefined;
  };

  const pump = (): void => {
    if (pumping || closed) return;
    pumping = true;
    let again: 'now' | 'soon' | undefined;
    try {
      const now = performance.now();
      const target = fast ? Infinity : clockMs + (now - lastReal) * speed;
      lastReal = now;
      let budget = BATCH;
      let limited = false;
      for (;;) {
        const s = nextStream();
        if (!s) break;
        const t = eventTime(s, s.step);
        if (t > target) break;
        if (blocked()) {
          limited = true;
          again = 'soon';
          break;
        }
        if (budget-- <= 0) {
          limited = true;
          again = 'now';
          break;
        }
        emit(s, t);
        clockMs = Math.max(clockMs, t);
        s.step++;
        if (s.step > updates) {
          s.idx++;
          s.step = 0;
        }
      }
      // When the pump could not keep up, the clock stays at the last event sent (the replay slows down)
      // rather than running ahead of what clients have been sent.
      if (!fast && !limited) clockMs = Math.max(clockMs, target);
    } finally {
      pumping = false;
    }
    if (again) schedulePump(again === 'now' ? 0 : 2);
  };

  const schedulePump = (delayMs = 0): void => {
    if (pumpScheduled || closed) return;
    pumpScheduled = true;
    const run = () => {
      pumpScheduled = false;
      pump();
    };
    if (delayMs === 0) setImmediate(run);
    else setTimeout(run, delayMs);
  };

  const ticker = setInterval(pump, TICK_MS);

  const emit = (s: ActiveStream, t: number): void => {
    const c = s.candles[s.idx] as Candle;
    const isClose = s.step >= updates;
    const shown = isClose ? c : partialAt(c, (t - c.openTime) / (c.closeTime + 1 - c.openTime));
    const first = s.firstIds[s.idx] as number;
    const variants = new Map<boolean, string>();
    const data = (micro: boolean): string => {
      let v = variants.get(micro);
      if (v === undefined) {
        const m = micro ? 1000 : 1;
        v = JSON.stringify({
          e: 'kline',
          E: t * m,
          s: s.symbol,
          k: {
            t: c.openTime * m,
            T: c.closeTime * m,
            s: s.symbol,
            i: s.interval,
            f: shown.trades > 0 ? first : -1,
            L: shown.trades > 0 ? first + shown.trades - 1 : -1,
            o: fmt(shown.open),
            c: fmt(shown.close),
            h: fmt(shown.high),
            l: fmt(shown.low),
            v: fmt(shown.volume),
            n: shown.trades,
            x: isClose,
            q: fmt(shown.quoteVolume),
            V: fmt(shown.takerBuyBase),
            Q: fmt(shown.takerBuyQuote),
            B: '0',
          },
        });
        variants.set(micro, v);
      }
      return v;
    };
    for (const conn of s.subs) {
      if (conn.dead) continue;
      const payload = data(conn.micro);
      deliver(conn, conn.combined ? `{"stream":"${s.name}","data":${payload}}` : payload, isClose);
    }
  };

  // ---- per-connection sending and faults ----

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
        schedulePump();
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
    const data = JSON.stringify({ e: 'serverShutdown', E: Math.floor(clockMs) });
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

  // ---- subscriptions and control messages ----

  const subscribe = (conn: Conn, names: string[]): void => {
    for (const name of names) {
      if (conn.streams.has(name)) continue;
      conn.streams.add(name);
      const m = KLINE_STREAM.exec(name);
      if (!m) continue;
      const symbol = (m[1] as string).toUpperCase();
      const interval = m[2] as Interval;
      if (!index.hasSymbol(symbol)) continue; // well-formed but unknown: accepted and silent, as on Binance
      const s = active.get(name) ?? activate(name, symbol, interval);
      s.subs.add(conn);
    }
    schedulePump();
  };

  const unsubscribe = (conn: Conn, names: string[]): void => {
    for (const name of names) {
      conn.streams.delete(name);
      const s = active.get(name);
      if (!s) continue;
      s.subs.delete(conn);
      if (s.subs.size === 0) active.delete(name);
    }
  };

  const reply = (conn: Conn, body: object): void => {
    if (!conn.dead) rawSend(conn, JSON.stringify(body));
  };
  const replyError = (conn: Conn, code: number, msg: string, id: unknown): void =>
    reply(conn, { error: { code, msg }, id: id ?? null });

  const validId = (id: unknown): boolean =>
    id === null ||
    id === undefined ||
    (typeof id === 'number' && Number.isSafeInteger(id)) ||
    (typeof id === 'string' && /^[A-Za-z0-9]{1,36}$/.test(id));

  const onControl = (conn: Conn, text: string): void => {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return replyError(conn, 3, 'Invalid JSON: expected value at line 1 column 1', null);
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      return replyError(conn, 2, 'Invalid request: expected a JSON object', null);
    }
    const { method, params, id } = req as { method?: unknown; params?: unknown; id?: unknown };
    if (!validId(id)) return replyError(conn, 2, 'Invalid request: request ID must be an unsigned integer', null);
    if (method === undefined) return replyError(conn, 2, 'Invalid request: missing field `method`', id);
    const list = Array.isArray(params) ? params : [];
    switch (method) {
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE': {
        if (!list.every((p): p is string => typeof p === 'string' && VALID_STREAM.test(p))) {
          return replyError(conn, 2, 'Invalid request: invalid stream', id);
        }
        if (method === 'SUBSCRIBE') {
          const total = new Set([...conn.streams, ...list]).size;
          if (total > MAX_STREAMS_PER_CONNECTION) {
            return replyError(conn, 2, `Invalid request: too many streams (max ${MAX_STREAMS_PER_CONNECTION})`, id);
          }
          // The answer goes out before the first event of the new streams (the pump runs later).
          reply(conn, { result: null, id: id ?? null });
          subscribe(conn, list);
        } else {
          unsubscribe(conn, list);
          reply(conn, { result: null, id: id ?? null });
        }
        return;
      }
      case 'LIST_SUBSCRIPTIONS':
        return reply(conn, { result: [...conn.streams], id: id ?? null });
      case 'SET_PROPERTY':
      case 'GET_PROPERTY': {
        const [prop, value] = list as unknown[];
        if (typeof prop !== 'string') return replyError(conn, 2, 'Invalid request: property name must be a string', id);
        if (prop !== 'combined') return replyError(conn, 0, 'Unknown property', id);
        if (method === 'GET_PROPERTY') return reply(conn, { result: conn.combined, id: id ?? null });
        if (typeof value !== 'boolean') return replyError(conn, 1, 'Invalid value type: expected Boolean', id);
        conn.combined = value;
        return reply(conn, { result: null, id: id ?? null });
      }
      default:
        return replyError(
          conn,
          2,
          `Invalid request: unknown variant ${JSON.stringify(String(method))}, expected one of ` +
            '`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`',
          id,
        );
    }
  };

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

  // ---- the WebSocket side ----

  const wss = new WebSocketServer({ noServer: true });

  const onConnection = (ws: WebSocket, url: URL): void => {
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

  // ---- HTTP: REST and admin ----

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, {
      'content-type': 'application/json;charset=UTF-8',
      'x-mbx-used-weight-1m': String(weight.used),
    });
    res.end(JSON.stringify(body));
  };

  const addWeight = (w: number): void => {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== weight.minute) weight = { minute, used: 0 };
    weight.used += w;
  };

  const clock = (): number => {
    if (!fast) pump(); // bring the clock current, and everything due onto the sockets first
    return Math.floor(clockMs);
  };

  const intParam = (q: URLSearchParams, name: string): number | undefined => {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?[0-9]{1,20}$/.test(v)) {
      throw new BinanceError(
        400,
        -1100,
        `Illegal characters found in parameter '${name}'; legal range is '^[0-9]{1,20}$'.`,
      );
    }
    return Number(v);
  };

  const klines = (q: URLSearchParams): unknown[][] => {
    const symbol = q.get('symbol');
    const interval = q.get('interval');
    const mandatory = (p: string) =>
      new BinanceError(400, -1102, `Mandatory parameter '${p}' was not sent, was empty/null, or malformed.`);
    if (!symbol) throw mandatory('symbol');
    if (!/^[A-Z0-9-_.]{1,20}$/.test(symbol)) {
      throw new BinanceError(
        400,
        -1100,
        "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
      );
    }
    if (!interval) throw mandatory('interval');
    if (!isInterval(interval)) throw new BinanceError(400, -1120, 'Invalid interval.');
    if (!index.hasSymbol(symbol)) throw new BinanceError(400, -1121, 'Invalid symbol.');
    const startTime = intParam(q, 'startTime');
    const endTime = intParam(q, 'endTime');
    const rawLimit = intParam(q, 'limit');
    if (rawLimit !== undefined && rawLimit < 1) {
      throw new BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.");
    }
    const limit = Math.min(rawLimit ?? 500, 1000);
    if (startTime !== undefined && endTime !== undefined && startTime > endTime) {
      throw new BinanceError(400, -1023, 'Start time is greater than end time.');
    }
    const now = clock();
    const candles = index.series(symbol, interval);
    const lower = (t: number) => {
      let lo = 0;
      let hi = candles.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((candles[mid] as Candle).openTime < t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    // The future is unknown: only candles opened by the replay clock exist.
    const from = startTime === undefined ? 0 : lower(startTime);
    const to = lower(Math.min(endTime ?? Infinity, now) + 1); // exclusive
    const [a, b] = startTime !== undefined ? [from, Math.min(to, from + limit)] : [Math.max(from, to - limit), to];
    const rows: unknown[][] = [];
    for (let i = a; i < b; i++) {
      const c = candles[i] as Candle;
      const shown = now > c.closeTime ? c : partialAt(c, (now - c.openTime) / (c.closeTime + 1 - c.openTime));
      rows.push([
        c.openTime,
        fmt(shown.open),
        fmt(shown.high),
        fmt(shown.low),
        fmt(shown.close),
        fmt(shown.volume),
        c.closeTime,
        fmt(shown.quoteVolume),
        shown.trades,
        fmt(shown.takerBuyBase),
        fmt(shown.takerBuyQuote),
        '0',
      ]);
    }
    return rows;
  };

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 65_536) reject(new BinanceError(413, -1, 'Body too large.'));
      });
      req.on('end', () => resolve(body));
      req.on('error', reject);
    });

  const stats = () => ({ connections: [...conns].filter((c) => !c.dead).length, ...counters });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://replay');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /api/v3/ping':
          addWeight(1);
          return json(res, 200, {});
        case 'GET /api/v3/time':
          addWeight(1);
          return json(res, 200, { serverTime: clock() });
        case 'GET /api/v3/klines':
          addWeight(2);
          return json(res, 200, klines(url.searchParams));
        case 'GET /admin/faults':
          return json(res, 200, faults);
        case 'PUT /admin/faults': {
          const parsed = faultsSchema.safeParse(JSON.parse((await readBody(req)) || '{}'));
          if (!parsed.success) return json(res, 400, { error: 'invalid faults', issues: parsed.error.issues });
          setFaults(parsed.data);
          return json(res, 200, faults);
        }
        case 'GET /admin/stats':
          return json(res, 200, { ...stats(), clock: clock() });
        case 'POST /admin/drop-all':
          dropAll();
          return json(res, 200, { dropped: true });
        default:
          return json(res, 404, { code: -1, msg: 'Not found.' });
      }
    } catch (err) {
      if (err instanceof BinanceError) return json(res, err.status, { code: err.code, msg: err.message });
      if (err instanceof SyntaxError) return json(res, 400, { error: 'body is not JSON' });
      return json(res, 500, { code: -1000, msg: 'An unknown error occurred while processing the request.' });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://replay');
    if (
      !/^\/(stream|ws)(\/|$)/.test(url.pathname) ||
      (url.pathname.startsWith('/stream') && url.pathname !== '/stream')
    ) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, url));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  const dropAll = (): void => {
    for (const c of conns) drop(c);
  };

  if (opts.faults) setFaults(opts.faults);

  return {
    wsUrl: `ws://${shownHost}:${port}`,
    restUrl: `http://${shownHost}:${port}`,
    clock,
    setFaults,
    dropAll,
    stats,
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(ticker);
      if (shutdownTimer) clearTimeout(shutdownTimer);
      for (const c of conns) {
        c.timers.forEach(clearTimeout);
        if (c.pongTimer) clearTimeout(c.pongTimer);
        c.ws.terminate();
      }
      conns.clear();
      active.clear();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
