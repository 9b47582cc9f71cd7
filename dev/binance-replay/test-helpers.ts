import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { recordedDataDir } from '../../test/kit/data';

/** Shared by the replay's tests: the recorded data, read in place (test/kit/data.ts says where). */
export const DATA_DIR = recordedDataDir;

export interface CsvRow {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** The recorded CSV parsed independently of the code under test: open time (ms) → row. */
export function readCsv(symbol: string, interval: string): Map<number, CsvRow> {
  const file = readdirSync(DATA_DIR).find((f) => f.startsWith(`${symbol}-${interval}-`) && f.endsWith('.csv'));
  if (!file) throw new Error(`no ${symbol} ${interval} file in ${DATA_DIR}`);
  const rows = new Map<number, CsvRow>();
  const lines = readFileSync(path.join(DATA_DIR, file), 'utf8').trim().split('\n').slice(1);
  for (const line of lines) {
    const [ts, o, h, l, c, v] = line.split(',');
    const t = /^\d+$/.test(ts ?? '') ? Number(ts) / 1000 : Date.parse(`${(ts ?? '').replace(' ', 'T')}Z`);
    rows.set(t, { open: Number(o), high: Number(h), low: Number(l), close: Number(c), volume: Number(v) });
  }
  return rows;
}

export interface KlineMsg {
  stream?: string;
  data: {
    e: string;
    E: number;
    s: string;
    k: {
      t: number;
      T: number;
      s: string;
      i: string;
      f: number;
      L: number;
      o: string;
      c: string;
      h: string;
      l: string;
      v: string;
      n: number;
      x: boolean;
      q: string;
      V: string;
      Q: string;
      B: string;
    };
  };
}

/** A `ws` client that records every frame (capped) and lets a test wait for one matching a predicate. */
export class Client {
  readonly ws: WebSocket;
  readonly frames: string[] = [];
  readonly times: number[] = [];
  /** Frames parsed on arrival (undefined for malformed ones), so predicates stay cheap. */
  readonly parsed: unknown[] = [];
  closed?: { code: number; reason: string };
  private waiters: (() => void)[] = [];

  constructor(
    url: string,
    options?: WebSocket.ClientOptions,
    private readonly cap = 5000,
  ) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (d) => {
      if (this.frames.length < this.cap) {
        const text = String(d);
        this.frames.push(text);
        this.times.push(Date.now());
        try {
          this.parsed.push(JSON.parse(text));
        } catch {
          this.parsed.push(undefined);
        }
      }
      this.wake();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    this.ws.on('error', () => undefined); // surfaced through `closed`
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  /** Resolves when `done()` holds (checked on every frame and on close), or rejects after `ms`. */
  until(done: () => boolean, ms = 30_000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  untilClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed !== undefined, ms, 'close').then(
      () => this.closed as { code: number; reason: string },
    );
  }

  json(): unknown[] {
    return this.parsed;
  }

  klines(): KlineMsg[] {
    return this.parsed.filter((m): m is KlineMsg => {
      const x = m as { data?: { e?: string }; e?: string } | undefined;
      return x?.data?.e === 'kline';
    });
  }

  send(body: unknown): void {
    this.ws.send(JSON.stringify(body));
  }

  close(): void {
    this.ws.terminate();
  }
}

export const T0 = Date.parse('2024-10-01T03:00:00Z');

export type SyntheticRow = CsvRow & { openTime: number };

/** `count` candles of `intervalMs` from `from`: a deterministic random walk around 100, 2-decimal prices, gap-free. */
export function syntheticRows(intervalMs: number, from: number, count: number): SyntheticRow[] {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const cents = (x: number) => Math.round(x * 100) / 100;
  const rows: SyntheticRow[] = [];
  let price = 100;
  for (let i = 0; i < count; i++) {
    const open = price;
    const close = cents(open * (1 + (rand() - 0.5) * 0.002));
    const high = cents(Math.max(open, close) + rand() * 0.05);
    const low = cents(Math.min(open, close) - rand() * 0.05);
    const volume = Math.round(rand() * 100_000) / 1000;
    rows.push({ openTime: from + i * intervalMs, open, high, low, close, volume });
    price = close;
  }
  return rows;
}

/**
 * A data folder of synthetic candles, for tests that must not depend on the recording: `syntheticRows` written
 * as `SYMBOL-INTERVAL-synthetic.csv` into a new temporary folder. Returns the folder and the rows written.
 */
export function syntheticDataDir(
  symbol: string,
  interval: string,
  intervalMs: number,
  from: number,
  count: number,
): { dir: string; rows: SyntheticRow[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'binance-replay-'));
  const rows = syntheticRows(intervalMs, from, count);
  const iso = (t: number) => new Date(t).toISOString().slice(0, 19).replace('T', ' ');
  const csv = rows.map((r) => `${iso(r.openTime)},${r.open},${r.high},${r.low},${r.close},${r.volume}`);
  writeFileSync(
    path.join(dir, `${symbol}-${interval}-synthetic.csv`),
    ['timestamp,open,high,low,close,volume', ...csv].join('\n') + '\n',
  );
  return { dir, rows };
}
