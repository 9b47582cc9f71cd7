import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { loadCandles } from '../dev/binance-replay/candles';
import { recordedDataDir } from '../test/kit/data';
import { intervalMs, streamName, type Candle } from '../machine-runtime/candles';

/**
 * The runtime benchmark's synthetic market: the recorded candles mapped onto N symbols, the frames and
 * REST rows Binance would send for them, and the Binance end of the runtime's feed serving them.
 */

export const INTERVALS = ['1m', '5m', '15m'] as const;
export const WARMUP = 300;
/** Market time the live replay starts at (a 15-minute boundary); warm-up history lies before it. */
export const LIVE_START = Date.parse('2025-01-01T00:00:00Z');
const MINUTE = 60_000;

/**
 * The recorded market mapped onto N symbols SYM0USDT…: every 1m stream replays BTCUSDT's recorded 1m
 * candles, every 5m stream the 5m file of BTC, ETH or SOL (by symbol number), every 15m stream the
 * same 5m file aggregated to 15m (dev/binance-replay's loader). Each symbol starts at its own offset
 * into its series, so no two symbols move alike; times are re-based so that every stream's candle j
 * opens at LIVE_START + j × interval (j < 0: warm-up history).
 */
export class RecordedMarket {
  private readonly series = new Map<string, { t: number; o: number; h: number; l: number; c: number; v: number }[]>();
  private readonly offsets = new Map<string, number>();
  constructor(
    readonly symbols: string[],
    liveMinutes: number,
  ) {
    const bases = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
    for (const iv of INTERVALS)
      for (const base of iv === '1m' ? ['BTCUSDT'] : bases) {
        const rows = loadCandles(recordedDataDir, base, iv).map((c) => ({
          t: c.openTime,
          o: c.open,
          h: c.high,
          l: c.low,
          c: c.close,
          v: c.volume,
        }));
        this.series.set(`${base}|${iv}`, rows);
      }
    symbols.forEach((symbol, i) => {
      for (const iv of INTERVALS) {
        const rows = this.rows(i, iv);
        const span = WARMUP + Math.ceil(liveMinutes / (intervalMs(iv) / MINUTE)) + 2;
        if (rows.length < span) throw new Error(`recorded ${iv} series too short for ${span} candles`);
        this.offsets.set(`${i}|${iv}`, (i * 7919) % (rows.length - span));
      }
    });
  }
  private rows(i: number, iv: string) {
    const base = iv === '1m' ? 'BTCUSDT' : ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'][i % 3]!;
    return this.series.get(`${base}|${iv}`)!;
  }
  /** Candle j of symbol i on `iv` (j from -WARMUP). */
  candle(i: number, iv: string, j: number): Candle {
    const r = this.rows(i, iv)[this.offsets.get(`${i}|${iv}`)! + WARMUP + j]!;
    const ms = intervalMs(iv);
    const openTime = LIVE_START + j * ms;
    const symbol = this.symbols[i]!;
    return {
      symbol,
      interval: iv,
      openTime,
      closeTime: openTime + ms - 1,
      open: r.o,
      high: r.h,
      low: r.l,
      close: r.c,
      volume: r.v,
    };
  }
  /** The candles that close at the end of live minute `m`, every stream of an interval together. */
  closesAt(m: number): Candle[] {
    const out: Candle[] = [];
    for (const iv of INTERVALS) {
      const per = intervalMs(iv) / MINUTE;
      if ((m + 1) % per !== 0) continue;
      for (let i = 0; i < this.symbols.length; i++) out.push(this.candle(i, iv, (m + 1) / per - 1));
    }
    return out;
  }
  /** Warm-up history in time order (what REST hands the feed before it goes live). */
  history(): Candle[][] {
    const out: Candle[][] = [];
    for (const iv of INTERVALS)
      for (let j = -WARMUP; j < 0; j++) out.push(this.symbols.map((_, i) => this.candle(i, iv, j)));
    return out;
  }
  /** Binance `GET /api/v3/klines` rows for one symbol (only what the feed asks: endTime/startTime/limit). */
  klines(symbol: string, iv: string, q: URLSearchParams, lastJ: number): unknown[][] {
    const i = this.symbols.indexOf(symbol);
    if (i < 0) return [];
    const ms = intervalMs(iv);
    const limit = Math.min(Number(q.get('limit') ?? 500), 1000);
    const end = q.has('endTime') ? Math.min(lastJ, Math.floor((Number(q.get('endTime')) - LIVE_START) / ms)) : lastJ;
    const start = q.has('startTime')
      ? Math.max(-WARMUP, Math.ceil((Number(q.get('startTime')) - LIVE_START) / ms))
      : Math.max(-WARMUP, end - limit + 1);
    const rows: unknown[][] = [];
    for (let j = start; j <= end && rows.length < limit; j++) {
      const c = this.candle(i, iv, j);
      rows.push([c.openTime, fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume), c.closeTime]);
    }
    return rows;
  }
}

const fmt = (n: number) => n.toFixed(8);

/**
 * One combined-stream kline frame, as Binance sends it (`{"stream":…,"data":{"e":"kline",…}}`, prices
 * and volumes as decimal strings). `fraction` < 1: the candle still forming, that far into its time.
 */
export function klineFrame(c: Candle, fraction: number): string {
  const x = fraction >= 1;
  const close = x ? c.close : c.open + (c.close - c.open) * fraction;
  const high = x ? c.high : Math.max(c.open, close);
  const low = x ? c.low : Math.min(c.open, close);
  const volume = c.volume * Math.min(1, fraction);
  const eventTime = x ? c.closeTime + 1 : Math.floor(c.openTime + (c.closeTime - c.openTime) * fraction);
  return JSON.stringify({
    stream: streamName(c.symbol, c.interval),
    data: {
      e: 'kline',
      E: eventTime,
      s: c.symbol,
      k: {
        t: c.openTime,
        T: c.closeTime,
        s: c.symbol,
        i: c.interval,
        f: 100,
        L: 200,
        o: fmt(c.open),
        c: fmt(close),
        h: fmt(high),
        l: fmt(low),
        v: fmt(volume),
        n: 101,
        x,
        q: fmt(volume * close),
        V: fmt(volume / 2),
        Q: fmt((volume / 2) * close),
        B: '0',
      },
    },
  });
}

/**
 * Server-to-client WebSocket text frames (RFC 6455: FIN, opcode 1, unmasked) back to back in one
 * buffer: a burst framed before the clock starts and written to the feed socket in one write, so the
 * clock measures the runtime, not this process's 900 `ws.send` calls (~10-20 ms on this box).
 */
export function wsTextFrames(texts: string[]): Buffer {
  const payloads = texts.map((t) => Buffer.from(t));
  const header = (n: number) => (n < 126 ? 2 : n < 65536 ? 4 : 10);
  const out = Buffer.allocUnsafe(payloads.reduce((a, p) => a + header(p.length) + p.length, 0));
  let at = 0;
  for (const p of payloads) {
    out[at++] = 0x81;
    if (p.length < 126) out[at++] = p.length;
    else if (p.length < 65536) {
      out[at++] = 126;
      at = out.writeUInt16BE(p.length, at);
    } else {
      out[at++] = 127;
      at = out.writeBigUInt64BE(BigInt(p.length), at);
    }
    at += p.copy(out, at);
  }
  return out;
}

/**
 * The Binance end of the runtime's feed, in this (the benchmark's) process: `GET /api/v3/klines` for
 * the warm-up and `/stream?streams=…` combined streams, both served from the recorded market.
 */
export async function startFeeder(market: RecordedMarket, lastJ: () => Record<string, number>) {
  const sockets = new Set<WebSocket>();
  const raw = new Map<WebSocket, Socket>();
  // The feed puts every stream of a connection in the URL (900 names ≈ 20 KB): above Node's default.
  const server: Server = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/v3/klines') return res.writeHead(404).end();
    const iv = url.searchParams.get('interval') ?? '';
    const rows = market.klines(url.searchParams.get('symbol') ?? '', iv, url.searchParams, lastJ()[iv] ?? -1);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rows));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    sockets.add(ws);
    raw.set(ws, req.socket);
    ws.on('close', () => {
      sockets.delete(ws);
      raw.delete(ws);
    });
    ws.on('message', () => undefined); // (UN)SUBSCRIBE: the set does not change during a run
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `127.0.0.1:${port}`,
    connections: () => sockets.size,
    /** Writes frames to the (single) feed connection; resolves once they are handed to the kernel. */
    send(frames: string[]): Promise<void> {
      const [ws] = sockets;
      if (!ws) throw new Error('the runtime has no feed connection');
      for (const f of frames) ws.send(f);
      return new Promise((r) => {
        const wait = () => (ws.bufferedAmount === 0 ? r() : setTimeout(wait, 1));
        wait();
      });
    },
    /** Writes frames framed by `wsTextFrames` in one socket write; resolves once the kernel has them all. */
    write(bytes: Buffer): Promise<void> {
      const [ws] = sockets;
      const socket = ws && raw.get(ws);
      if (!socket) throw new Error('the runtime has no feed connection');
      return new Promise((r) => socket.write(bytes, () => r()));
    },
    /** Bytes written to the feed connection that the kernel has not taken yet (the runtime reads too slowly). */
    queued: () => [...raw.values()].reduce((a, s) => a + s.writableLength, 0),
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise((r) => server.close(r));
    },
  };
}
