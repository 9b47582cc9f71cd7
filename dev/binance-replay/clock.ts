import { performance } from 'node:perf_hooks';
import type { Candle, DataIndex, Interval } from './candles';
import { KLINE_STREAM, type Conn } from './connections';
import { klineEventJson } from './kline';
import type { Timeline, Timelines } from './laps';
import { partialAt } from './partial';

/**
 * The replay clock, shared by every stream, and the event pump: the subscribed kline streams, each positioned on
 * the clock, and their events sent in time order as the clock moves (or as fast as sockets drain).
 */

/** Above this many buffered bytes on any subscriber the shared clock waits: no unbounded buffering. */
const HIGH_WATER_BYTES = 1 << 20;
/** Events emitted per pump before yielding to the event loop, so control messages and REST stay served. */
const BATCH = 2000;
const TICK_MS = 20;

/** One kline stream with at least one subscriber, and where it stands on the shared clock. */
interface ActiveStream {
  name: string;
  symbol: string;
  interval: Interval;
  /** The series through the laps (laps.ts); `idx` is a virtual index into it. */
  timeline: Timeline;
  idx: number;
  /** `timeline.at(idx)` and its first trade id, kept so the hot path does not recompute them. */
  cur: Candle | undefined;
  firstId: number;
  step: number;
  subs: Set<Conn>;
}

export interface ReplayClockOptions {
  index: DataIndex;
  /** The series as the streams play them: the recording, or its laps in loop mode. */
  timelines: Timelines;
  /** Replay speed (60 = one 1m candle per second); 0 or Infinity = as fast as possible. Default 60. */
  speed?: number;
  /** In-progress updates sent before each close. Default 2. */
  updatesPerCandle?: number;
  /** Where the clock starts (ms epoch). Default: the first candle of the data. */
  startTime?: number;
  /** Every connection: the clock waits for one whose socket backs up. */
  conns: ReadonlySet<Conn>;
  /** Sends one event to one subscriber (connections.ts). */
  deliver: (conn: Conn, msg: string, isClose: boolean) => void;
}

export type ReplayClock = ReturnType<typeof createReplayClock>;

export function createReplayClock(opts: ReplayClockOptions) {
  const { index, timelines, conns, deliver } = opts;
  const speed = opts.speed ?? 60;
  const fast = speed === 0 || !Number.isFinite(speed);
  const updates = Math.max(0, Math.floor(opts.updatesPerCandle ?? 2));

  let clockMs = opts.startTime ?? index.firstOpenTime() ?? Date.now();
  let lastReal = performance.now();
  let pumping = false;
  let pumpScheduled = false;
  let closed = false;
  const active = new Map<string, ActiveStream>();

  const eventTime = (s: ActiveStream, step: number): number => {
    const c = s.cur;
    if (!c) return Infinity;
    const dur = c.closeTime + 1 - c.openTime;
    return step < updates ? c.openTime + Math.floor((dur * (step + 1)) / (updates + 1)) : c.openTime + dur;
  };

  const moveTo = (s: ActiveStream, idx: number): void => {
    s.idx = idx;
    s.cur = s.timeline.at(idx);
    s.firstId = s.cur ? s.timeline.firstTradeId(idx) : 0;
    s.step = 0;
  };

  /** Positions a stream on its first event strictly after the clock: no history over WS, as on Binance. */
  const activate = (name: string, symbol: string, interval: Interval): ActiveStream => {
    const tl = timelines.series(symbol, interval);
    // The first candle still open at the clock: the one holding it, else the next to open.
    let idx = tl.lower(clockMs);
    if ((tl.at(idx - 1)?.closeTime ?? -Infinity) >= clockMs) idx--;
    const s: ActiveStream = {
      name,
      symbol,
      interval,
      timeline: tl,
      idx,
      cur: undefined,
      firstId: 0,
      step: 0,
      subs: new Set(),
    };
    moveTo(s, idx);
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
        if (s.step > updates) moveTo(s, s.idx + 1);
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
    const c = s.cur as Candle;
    const isClose = s.step >= updates;
    const shown = isClose ? c : partialAt(c, (t - c.openTime) / (c.closeTime + 1 - c.openTime));
    const first = s.firstId;
    const variants = new Map<boolean, string>();
    const data = (micro: boolean): string => {
      let v = variants.get(micro);
      if (v === undefined) {
        v = klineEventJson({
          symbol: s.symbol,
          interval: s.interval,
          candle: c,
          shown,
          eventTime: t,
          firstTradeId: first,
          isClose,
          micro,
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

  return {
    /** The clock (ms), brought current first: everything due goes onto the sockets before it is read. */
    now: (): number => {
      if (!fast) pump();
      return Math.floor(clockMs);
    },
    /** The clock as it stands, without pumping. */
    rawMs: (): number => clockMs,
    schedulePump,
    subscribe,
    unsubscribe,
    close: (): void => {
      closed = true;
      clearInterval(ticker);
      active.clear();
    },
  };
}
