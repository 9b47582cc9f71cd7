import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/**
 * The runtime benchmark's browsers, in their own process so their CPU is not charged to the runtime.
 * Every client counts the candles and signals it receives (they come batched: `candles` and `signals`
 * frames); a few also note when each candle arrived (epoch ms with sub-ms precision, comparable across
 * processes on one machine). A frame is only noted when it arrives and read after the event-loop
 * turn: one client's parsing must not delay the next one's arrival time (5 × 150 KB of JSON at a
 * boundary is a few ms, which is not the runtime's).
 */
const url = process.env.BENCH_WS_URL!;
const token = process.env.BENCH_TOKEN!;
const n = Number(process.env.BENCH_CLIENTS);
const timed = Number(process.env.BENCH_TIMED_CLIENTS ?? 5);
const now = () => performance.timeOrigin + performance.now();

let frames = 0;
let received = 0;
let closed = 0;
const arrivals = new Map<string, number>();
let recording = false;
const later: [number, number, Buffer][] = [];

interface Frame {
  type: string;
  candles?: { symbol: string; interval: string; openTime: number }[];
  signals?: unknown[];
}

const itemKey = Buffer.from('"symbol":');
/** Candles and signals in a `candles` / `signals` frame: each has exactly one `symbol` key. */
function countItems(data: Buffer): number {
  if (data.indexOf('{"type":"candles"') !== 0 && data.indexOf('{"type":"signals"') !== 0) return 0;
  let n = 0;
  for (let at = data.indexOf(itemKey); at >= 0; at = data.indexOf(itemKey, at + itemKey.length)) n++;
  return n;
}

function readLater() {
  for (const [i, t, data] of later.splice(0)) {
    if (i >= timed) {
      // The others only count, without parsing: this process shares the box with the runtime.
      received += countItems(data);
      continue;
    }
    const msg = JSON.parse(data.toString()) as Frame;
    received += (msg.candles?.length ?? 0) + (msg.signals?.length ?? 0);
    if (!recording || !msg.candles) continue;
    for (const c of msg.candles) {
      const key = `${i}|${c.symbol}|${c.interval}|${c.openTime}`;
      if (!arrivals.has(key)) arrivals.set(key, t);
    }
  }
}

async function main() {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
          ws.on('open', () => resolve(ws));
          ws.on('error', reject);
          ws.on('close', () => closed++);
          ws.on('message', (data: Buffer) => {
            frames++;
            if (later.push([i, now(), data]) === 1) setImmediate(readLater);
          });
        }),
    ),
  );
  process.on('message', (m: { type: string }) => {
    if (m.type === 'reset') {
      received = 0;
      frames = 0;
      process.send?.({ type: 'reset' });
    }
    if (m.type === 'record') recording = true;
    if (m.type === 'count') {
      readLater();
      process.send?.({ type: 'count', received, frames, closed });
    }
    if (m.type === 'arrivals') {
      readLater();
      // Per candle, the latest arrival among the timed clients: the slowest browser is the one that counts.
      const latest = new Map<string, number>();
      for (const [key, t] of arrivals) {
        const candle = key.slice(key.indexOf('|') + 1);
        latest.set(candle, Math.max(latest.get(candle) ?? 0, t));
      }
      process.send?.({ type: 'arrivals', arrivals: [...latest] });
    }
    if (m.type === 'close') {
      for (const ws of sockets) ws.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.send?.({ type: 'ready' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
