/** Plain-text output for a terminal: aligned tables, key/value blocks, instants and ages. Pure. */

export interface Column<T> {
  header: string;
  value: (row: T) => string | null | undefined;
  /** Numbers read better right-aligned. */
  align?: 'left' | 'right';
}

const EMPTY = '-';
const cell = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? EMPTY : oneLine(v));
/** A cell is one line: newlines and tabs would break the columns. */
const oneLine = (v: string) => v.replace(/\s*[\r\n\t]+\s*/g, ' ');

/**
 * An aligned table: a header row, then one line per row, columns separated by two spaces, no
 * trailing spaces. An empty value shows as "-". No rows: the header alone.
 */
export function formatTable<T>(columns: Column<T>[], rows: T[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** `key  value` lines with the values aligned; a null value shows as "-". */
export function formatPairs(pairs: [string, string | null | undefined][]): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`.trimEnd()).join('\n');
}

/** A section: a title line, then its body, or `(none)`. */
export function section(title: string, body: string | null): string {
  return `${title}\n${body ?? '  (none)'}`;
}

/** An ISO instant as `YYYY-MM-DD HH:MM:SSZ` (UTC, to the second); null or unparsable stays as it is. */
export function formatInstant(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** A duration in ms, coarse: `45s`, `12m`, `3h05m`, `2d04h`. Negative (a clock ahead) counts as 0. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** An instant and how long ago it was: `2026-06-01 10:00:00Z (12m ago)`. */
export function formatWhen(iso: string | null | undefined, nowMs: number): string | null {
  const at = formatInstant(iso);
  if (!at || !iso || Number.isNaN(Date.parse(iso))) return at;
  return `${at} (${formatAge(nowMs - Date.parse(iso))} ago)`;
}

/** `1 machine`, `2 machines`. */
export const count = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Pretty JSON with a final newline, for `--json`. */
export const toJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
