import type { NewTradeSignal, UserStore } from '../store/types';
import { streamKey } from './candles';
import type { Firing } from './engine';
import type { Annotator } from './gemini';
import { backoffMs, sleep, type Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';

export interface TradeSignalMessage {
  traderId: string;
  traderName: string;
  symbol: string;
  interval: string;
  candleOpenAt: string;
  firedAt: string;
  payload: Record<string, unknown>;
}

export interface TradeSignalSinkOptions {
  store: UserStore;
  log: Log;
  metrics: MachineRuntimeMetrics;
  broadcast: (s: TradeSignalMessage) => void;
  annotate?: Annotator;
  annotateTimeoutMs?: number;
  /** Gemini calls in flight at once; beyond it a signal goes out without a note. */
  annotateConcurrency?: number;
  /** Undelivered signals kept while the store is down; the oldest are dropped past it. */
  queueLimit?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

interface Queued {
  signal: NewTradeSignal;
  /** The stream (`SYMBOL|interval`) it fired on. */
  key: string;
  /** Already pushed to browsers; a replayed firing is pushed only once the store says it is new. */
  announced: boolean;
}

/**
 * Firing → optional AI note (bounded by a timeout) → pushed to browsers → written to the store.
 * The note comes first because the store has no update: a late note would be lost. A failed or
 * slow note never holds the signal back longer than the timeout. Store writes are retried with
 * backoff in firing order; the insert is idempotent, so a retry after an ambiguous failure is safe.
 * A replayed firing (a close evaluated again after a restart) goes the other way round: stored
 * first, pushed only when the store reports it new, so browsers never get one twice.
 */
export class TradeSignalSink {
  private readonly queue: Queued[] = [];
  /** Per stream, open time → firings submitted but not yet stored: the checkpoint stops short of them. */
  private readonly unstored = new Map<string, Map<number, number>>();
  private working = false;
  private annotating = 0;
  private stopped = false;
  lastStoreError: { at: number; message: string } | null = null;
  lastStoreOkAt = 0;

  constructor(private readonly o: TradeSignalSinkOptions) {}

  get queued(): number {
    return this.queue.length;
  }

  get storeFailing(): boolean {
    return this.lastStoreError !== null && this.lastStoreError.at > this.lastStoreOkAt;
  }

  submit(f: Firing): void {
    this.o.metrics.signals.inc();
    const key = streamKey(f.candle.symbol, f.candle.interval);
    this.hold(key, f.candle.openTime, 1);
    void this.prepare(f).then((s) => this.deliver({ signal: s, key, announced: f.replayed !== true }));
  }

  /** Open time of the earliest firing of stream `key` not yet stored (or dropped), if any. */
  unstoredFrom(key: string): number | undefined {
    const times = this.unstored.get(key);
    if (!times) return undefined;
    let min: number | undefined;
    for (const t of times.keys()) if (min === undefined || t < min) min = t;
    return min;
  }

  private hold(key: string, openTime: number, delta: 1 | -1): void {
    let times = this.unstored.get(key);
    if (!times) this.unstored.set(key, (times = new Map()));
    const n = (times.get(openTime) ?? 0) + delta;
    if (n > 0) times.set(openTime, n);
    else times.delete(openTime);
    if (times.size === 0) this.unstored.delete(key);
  }

  private release(q: Queued): void {
    this.hold(q.key, q.signal.candleOpenAt.getTime(), -1);
  }

  stop(): void {
    this.stopped = true;
  }

  private async prepare(f: Firing): Promise<NewTradeSignal> {
    const c = f.candle;
    const payload: Record<string, unknown> = {
      traderName: f.trader.name,
      close: c.close,
      candle: { open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, closeTime: c.closeTime },
      values: f.values,
    };
    if (this.o.annotate) {
      if (this.annotating >= (this.o.annotateConcurrency ?? 4)) {
        payload.aiNoteError = 'busy';
        this.o.metrics.aiNotes.inc({ outcome: 'skipped' });
      } else {
        this.annotating++;
        try {
          payload.aiNote = await withTimeout(this.o.annotate(f), this.o.annotateTimeoutMs ?? 5_000);
          this.o.metrics.aiNotes.inc({ outcome: 'ok' });
        } catch (err) {
          payload.aiNoteError = err instanceof Error ? err.message.slice(0, 200) : 'failed';
          this.o.metrics.aiNotes.inc({ outcome: 'error' });
          this.o.log.warn({ err, trader: f.trader.id }, 'AI note failed; signal kept without it');
        } finally {
          this.annotating--;
        }
      }
    }
    return {
      traderId: f.trader.id,
      symbol: c.symbol,
      interval: c.interval,
      candleOpenAt: new Date(c.openTime),
      firedAt: new Date(),
      payload,
    };
  }

  private announce(s: NewTradeSignal): void {
    this.o.broadcast({
      traderId: s.traderId,
      traderName: String(s.payload.traderName),
      symbol: s.symbol,
      interval: s.interval,
      candleOpenAt: s.candleOpenAt.toISOString(),
      firedAt: (s.firedAt ?? new Date()).toISOString(),
      payload: s.payload,
    });
  }

  private deliver(q: Queued): void {
    if (q.announced) this.announce(q.signal);
    this.queue.push(q);
    if (this.queue.length > (this.o.queueLimit ?? 1_000)) {
      this.release(this.queue.shift()!);
      this.o.metrics.signalsDropped.inc();
    }
    this.o.metrics.signalQueue.set(this.queue.length);
    void this.work();
  }

  /** Resolves once the queue is empty (tests, shutdown). */
  async flush(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // `unstored` also counts firings still being prepared (their note), not yet in the queue.
    while (this.queue.length > 0 || this.unstored.size > 0 || this.annotating > 0) {
      if (Date.now() > deadline) return false;
      await sleep(10);
    }
    return true;
  }

  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      let attempt = 0;
      while (this.queue.length > 0 && !this.stopped) {
        const head = this.queue[0]!;
        try {
          const { inserted } = await this.o.store.insertTradeSignal(head.signal);
          if (this.queue[0] === head) {
            this.queue.shift();
            this.release(head);
          }
          if (!head.announced) {
            if (inserted) this.announce(head.signal);
            else this.o.metrics.signalsRepeated.inc();
          }
          this.lastStoreOkAt = Date.now();
          this.o.metrics.signalsStored.inc();
          this.o.metrics.signalQueue.set(this.queue.length);
          attempt = 0;
        } catch (err) {
          this.o.metrics.storeErrors.inc({ op: 'insertSignal' });
          this.lastStoreError = { at: Date.now(), message: err instanceof Error ? err.message : String(err) };
          this.o.log.warn({ err, attempt }, 'storing a signal failed; will retry');
          await sleep(backoffMs(attempt++, this.o.retryBaseMs ?? 500, this.o.retryMaxMs ?? 30_000));
        }
      }
    } finally {
      this.working = false;
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });
}
