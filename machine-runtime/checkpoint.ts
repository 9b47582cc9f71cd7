import { z } from 'zod';
import type { RuntimeCheckpoint, UserStore } from '../store/types';
import type { Candle } from './candles';
import type { LoadedTrader } from './engine';
import { backoffMs, sleep, type Log } from './log';
import type { MachineRuntimeMetrics } from './metrics';

/*
 * Signals exactly once across restarts (README, "Restarts"). The runtime writes a small checkpoint
 * through its store (debounced): per stream, the open time of the last candle evaluated with every
 * signal it fired stored; and the traders running. After a restart the warm-up history is evaluated
 * silently up to that watermark (which rebuilds every trader's previous result), and the closes
 * after it, up to now, are evaluated again with firing: the store's unique key drops what the old
 * process had already stored, and the sink sends browsers only what the store reports new.
 */

/** A checkpoint read back is input like any other: checked before it is believed. */
const restoredSchema = z.object({
  machineId: z.string().nullable(),
  streams: z.record(z.string(), z.number().int().min(0)),
  traders: z.record(z.string(), z.number().int().min(0)),
});

export interface Resumption {
  /** Per stream: candles with an open time up to this were handled before the restart. */
  streams: Map<string, number>;
  /** Traders running then (id → updatedAt ms); only they fire on missed closes. */
  traders: Map<string, number>;
}

/**
 * Whether a stored checkpoint is this machine's to resume from. A checkpoint written by another
 * Fly machine means the one that wrote it was destroyed: the control plane destroys a machine when
 * it stops (user stop, downgrade, payment), and restarts, image updates and host moves keep the
 * machine id. That start is a fresh one: nothing is caught up. (SIGTERM cannot tell: Fly sends it
 * for all of them.) Off Fly (no machine id on either side) only the age bound applies.
 */
export function resumption(checkpoint: unknown, machineId: string | null): Resumption | { none: string } {
  if (checkpoint == null) return { none: 'no checkpoint' };
  const cp = restoredSchema.safeParse(checkpoint);
  if (!cp.success) return { none: 'checkpoint unreadable' };
  if (cp.data.machineId !== machineId)
    return { none: `checkpoint of machine ${cp.data.machineId ?? '(none)'}: started anew, not restarted` };
  return { streams: new Map(Object.entries(cp.data.streams)), traders: new Map(Object.entries(cp.data.traders)) };
}

/**
 * Which of a stream's warm-up candles (in order) fire again after a restart: the index of the first
 * one that does (`candles.length`: none). They follow the watermark and closed at most `maxMs`
 * before `now`: a machine down longer than that (stopped by an operator and started a week later)
 * rebuilds its state from the older ones silently instead of firing old signals.
 */
export function catchUpFrom(
  candles: readonly Candle[],
  o: { watermark: number | undefined; now: number; maxMs: number },
): number {
  if (o.watermark === undefined || o.maxMs <= 0) return candles.length;
  const oldest = o.now - o.maxMs;
  const i = candles.findIndex((c) => c.openTime > o.watermark! && c.closeTime >= oldest);
  return i < 0 ? candles.length : i;
}

/**
 * A stream's watermark as it may be written: the last evaluated candle, but never at or past a
 * firing of it not stored yet (a crash would otherwise lose that signal for good).
 */
export function watermark(evaluated: number | undefined, unstoredFrom: number | undefined): number | undefined {
  if (evaluated === undefined || unstoredFrom === undefined) return evaluated;
  return Math.min(evaluated, unstoredFrom - 1);
}

export interface CheckpointKeeperOptions {
  store: Pick<UserStore, 'getRuntimeCheckpoint' | 'putRuntimeCheckpoint'>;
  log: Log;
  metrics: MachineRuntimeMetrics;
  /** FLY_MACHINE_ID; null off Fly. */
  machineId: string | null;
  /** Market time in ms. */
  clock: () => number;
  /** How old a missed close may be and still fire (RUNTIME_CATCHUP_MAX); 0: never. */
  catchUpMaxMs: number;
  /** The sink's earliest unstored firing of a stream. */
  unstoredFrom: (key: string) => number | undefined;
  streams: () => readonly string[];
  traders: () => readonly LoadedTrader[];
  /** Writes are at most this often (default 5 s). */
  debounceMs?: number;
  /** Reading the checkpoint at start is tried this many times before starting without it (default 5). */
  restoreAttempts?: number;
  restoreRetryMs?: number;
}

/** Reads the checkpoint once at start, plans each stream's catch-up, and keeps the checkpoint current. */
export class CheckpointKeeper {
  private resumed: Resumption | null = null;
  private readonly evaluated = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private lastWritten = '';
  private failures = 0;
  private stopped = false;

  constructor(private readonly o: CheckpointKeeperOptions) {}

  /** Before the first warm-up. A store that cannot be read in time means a start without catch-up. */
  async restore(): Promise<void> {
    const attempts = this.o.restoreAttempts ?? 5;
    for (let attempt = 0; attempt < attempts && !this.stopped; attempt++) {
      try {
        const found = resumption(await this.o.store.getRuntimeCheckpoint(), this.o.machineId);
        if ('none' in found) return this.o.log.info({ reason: found.none }, 'no catch-up after this start');
        this.resumed = found;
        for (const [key, at] of found.streams) this.evaluated.set(key, at);
        this.o.log.info({ streams: found.streams.size }, 'resuming from the runtime checkpoint');
        return;
      } catch (err) {
        this.o.metrics.storeErrors.inc({ op: 'getCheckpoint' });
        this.o.log.warn({ err, attempt }, 'reading the runtime checkpoint failed');
        if (attempt + 1 < attempts) await sleep(backoffMs(attempt, this.o.restoreRetryMs ?? 500, 5_000));
      }
    }
    this.o.log.warn('starting without the runtime checkpoint: closes missed before this start are not caught up');
  }

  /**
   * A stream's warm-up history: the index from which its candles fire again, and which traders
   * may fire on them (those running before the restart, unchanged; a new or edited trader starts
   * from the current state, as always). Once per stream: its watermark is used up here.
   */
  plan(key: string, candles: readonly Candle[]): { from: number; mayFire: (t: LoadedTrader) => boolean } {
    const resumed = this.resumed;
    const at = resumed?.streams.get(key);
    resumed?.streams.delete(key);
    const from = catchUpFrom(candles, { watermark: at, now: this.o.clock(), maxMs: this.o.catchUpMaxMs });
    if (from < candles.length) this.o.metrics.catchUpCandles.inc(candles.length - from);
    return { from, mayFire: (t) => resumed?.traders.get(t.id) === t.updatedAt };
  }

  /** Candles of `key` up to `openTime` were evaluated (their firings are with the sink). */
  evaluatedUpTo(key: string, openTime: number): void {
    this.evaluated.set(key, openTime);
    this.schedule(this.o.debounceMs ?? 5_000);
  }

  /** What would be written now: the followed streams' watermarks and the traders loaded. */
  snapshot(): RuntimeCheckpoint {
    const streams: Record<string, number> = {};
    for (const key of this.o.streams()) {
      const at = watermark(this.evaluated.get(key), this.o.unstoredFrom(key));
      if (at !== undefined) streams[key] = at;
    }
    const traders: Record<string, number> = {};
    for (const t of this.o.traders()) traders[t.id] = t.updatedAt;
    return { machineId: this.o.machineId, streams, traders };
  }

  /** Writes what is pending now (shutdown): bounded by `timeoutMs`, never throws. */
  async flush(timeoutMs = 2_000): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const done = (async () => {
      await this.writing;
      if (this.evaluated.size > 0) await this.write();
    })();
    await Promise.race([done, sleep(timeoutMs)]);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, ms);
    this.timer.unref();
  }

  /** One write at a time; an unchanged checkpoint is not written again. */
  private async write(): Promise<void> {
    if (this.writing) return this.writing;
    const cp = this.snapshot();
    // Streams no longer followed (their traders gone) are forgotten: the map stays as small as the feed.
    for (const key of this.evaluated.keys()) if (!(key in cp.streams)) this.evaluated.delete(key);
    const text = JSON.stringify(cp);
    if (text === this.lastWritten) return;
    this.writing = (async () => {
      try {
        await this.o.store.putRuntimeCheckpoint(cp);
        this.lastWritten = text;
        this.failures = 0;
        this.o.metrics.checkpointWrites.inc({ outcome: 'ok' });
      } catch (err) {
        this.o.metrics.checkpointWrites.inc({ outcome: 'error' });
        this.o.metrics.storeErrors.inc({ op: 'putCheckpoint' });
        this.o.log.warn({ err, attempt: this.failures }, 'writing the runtime checkpoint failed; will retry');
        const base = this.o.debounceMs ?? 5_000;
        this.schedule(backoffMs(this.failures++, base, Math.max(base, 60_000)));
      } finally {
        this.writing = undefined;
      }
    })();
    return this.writing;
  }
}
