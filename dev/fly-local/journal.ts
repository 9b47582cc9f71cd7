import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Owner-only: the machine records hold each machine's config, its user token among the env. */
export const STATE_FILE_MODE = 0o600;

/**
 * fly-local's persistence: a snapshot (`state.json`) plus an append-only journal (`journal.ndjson`).
 *
 * - Every change appends one compact line holding the changed record whole (`{"put":{…}}`), or `{"reset":1}`
 *   when everything is forgotten. A line is one `write(2)` on an `O_APPEND` descriptor: O(size of the record),
 *   not O(size of the state) as rewriting the whole file was (quadratic at hundreds of machines).
 * - **fsync policy**: the journal is not fsynced by default. Once `write(2)` returns, the line is in the kernel,
 *   so a crash or SIGKILL of fly-local loses nothing; only an OS crash or power loss can lose the last lines (a
 *   dev tool's trade-off; `fsync: true`, env `FLY_LOCAL_FSYNC=1`, fsyncs every line). A snapshot is always
 *   fsynced before it is renamed over `state.json`, so a snapshot on disk is always whole.
 * - **Compaction**: when the journal has more lines than `max(minCompactLines, 2 × records)`, the whole state is
 *   written as a new snapshot (temp file, fsync, rename over `state.json`) and the journal is truncated: the
 *   amortized cost per change stays constant. It also runs at start (after replay) and at close.
 * - **Replay** (start): the snapshot, then every journal line in order. Lines are whole-record upserts, so
 *   replaying a line the snapshot already holds is harmless (a crash between the rename and the truncation).
 *   A torn last line (killed mid-write) fails to parse and is skipped; the compaction at start drops it.
 */

interface Snapshot<T> {
  version: 1;
  machines: T[];
}

type JournalLine<T> = { put: T } | { reset: 1 };

export interface JournalOptions {
  /** fsync every journal line (default false: a process crash loses nothing either way; an OS crash might). */
  fsync?: boolean;
  /** Compaction threshold floor (lines); the threshold is max(this, 2 × records). Default 1000. */
  minCompactLines?: number;
}

export interface LoadResult<T> {
  records: T[];
  /** Journal lines replayed. */
  replayed: number;
  /** Lines that did not parse (a torn last line after a crash; anything else means a damaged file). */
  skipped: number;
}

export class StateJournal<T extends { id: string }> {
  readonly snapshotPath: string;
  readonly journalPath: string;
  private fd: number | undefined;
  private lines = 0;
  private records = 0;
  private readonly fsync: boolean;
  private readonly minCompactLines: number;

  constructor(dataDir: string, options: JournalOptions = {}) {
    this.snapshotPath = path.join(dataDir, 'state.json');
    this.journalPath = path.join(dataDir, 'journal.ndjson');
    this.fsync = options.fsync ?? false;
    this.minCompactLines = options.minCompactLines ?? 1000;
  }

  /** Snapshot + journal, in order; the last version of each record wins. */
  load(): LoadResult<T> {
    const byId = new Map<string, T>();
    try {
      const snapshot = JSON.parse(readFileSync(this.snapshotPath, 'utf8')) as Snapshot<T>;
      for (const r of snapshot.machines) byId.set(r.id, r);
    } catch (err) {
      // No snapshot yet (first start). A snapshot is renamed into place whole, so it never half-exists.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let replayed = 0;
    let skipped = 0;
    let text = '';
    try {
      text = readFileSync(this.journalPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let line: JournalLine<T>;
      try {
        line = JSON.parse(raw) as JournalLine<T>;
      } catch {
        skipped++; // torn by a kill mid-write: that change never got an answer, so nobody relies on it
        continue;
      }
      replayed++;
      if ('reset' in line) byId.clear();
      else if (line.put && typeof line.put.id === 'string') byId.set(line.put.id, line.put);
    }
    return { records: [...byId.values()], replayed, skipped };
  }

  /** Appends the record's current version. Synchronous: when it returns, a crash of this process cannot lose it. */
  put(record: T, all: () => Iterable<T>, count: number): void {
    this.append(JSON.stringify({ put: record }) + '\n');
    this.records = count;
    if (this.lines > Math.max(this.minCompactLines, 2 * this.records)) this.compact(all());
  }

  /** Everything is forgotten. */
  reset(): void {
    this.append('{"reset":1}\n');
    this.compact([]);
  }

  /** Writes the whole state as the new snapshot and empties the journal. */
  compact(all: Iterable<T>): void {
    const machines = [...all];
    const tmp = `${this.snapshotPath}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', STATE_FILE_MODE);
    try {
      writeSync(fd, JSON.stringify({ version: 1, machines } satisfies Snapshot<T>));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.snapshotPath); // atomic: the old snapshot or the new one, never half of one
    // A crash right here replays the old journal over the new snapshot: harmless, its lines are upserts.
    this.closeJournal();
    this.fd = openSync(this.journalPath, 'w', STATE_FILE_MODE); // truncates
    this.lines = 0;
    this.records = machines.length;
  }

  close(): void {
    this.closeJournal();
  }

  private append(line: string): void {
    this.fd ??= openSync(this.journalPath, 'a', STATE_FILE_MODE);
    writeSync(this.fd, line);
    if (this.fsync) fsyncSync(this.fd);
    this.lines++;
  }

  private closeJournal(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
