import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';

export const resultsDir = resolve(__dirname, '..', 'results');

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile; NaN for an empty sample so a missing figure is visible, not zero. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
export const mb = (bytes: number) => round(bytes / 1024 / 1024, 0);

export function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineFacts() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    loadavg: os.loadavg().map((x) => round(x, 2)),
  };
}

export type Row = Record<string, string | number | boolean>;

export function markdownTable(rows: Row[]): string {
  if (rows.length === 0) return '(no rows)';
  // Column order from the widest row: a column only some rows have (e.g. one server's Postgres) stays in place.
  const widest = rows.reduce((a, r) => (Object.keys(r).length > Object.keys(a).length ? r : a));
  const cols = [...new Set([widest, ...rows].flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === undefined ? '' : String(v));
  return [
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n');
}

/**
 * Prints the tables and appends them to bench/results/<name>.md with date, commit and machine facts.
 * Load average is taken at the start and the end: these boxes are shared, and a busy one says so.
 */
export function report(
  name: string,
  opts: { title: string; startLoad: number[]; tables: { caption?: string; rows: Row[] }[]; notes?: string[] },
): string {
  const facts = machineFacts();
  const busy = Math.max(...opts.startLoad, ...facts.loadavg) > facts.cores;
  const lines = [
    `## ${new Date().toISOString()} · commit ${commit()}`,
    '',
    `${facts.cpu}, ${facts.cores} cores, ${facts.memoryGb} GB, Node ${facts.node}; ` +
      `load average (1/5/15 min) at start ${opts.startLoad.join(' / ')}, at end ${facts.loadavg.join(' / ')}` +
      (busy ? ' — **the machine was busy (load above its core count): figures are pessimistic**' : ''),
    '',
    ...opts.tables.flatMap((t) => [...(t.caption ? [`**${t.caption}**`, ''] : []), markdownTable(t.rows), '']),
    ...(opts.notes ?? []).map((n) => `- ${n}`),
    '',
  ];
  const text = lines.join('\n');
  console.log(`\n# ${opts.title}\n\n${text}`);
  if (!process.env.BENCH_NO_RESULTS) {
    mkdirSync(resultsDir, { recursive: true });
    const file = resolve(resultsDir, `${name}.md`);
    if (!existsSync(file)) writeFileSync(file, `# ${opts.title}\n\nAppended by \`npm run bench:${name}\`.\n\n`);
    appendFileSync(file, `${text}\n`);
  }
  return text;
}

export const envInt = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
};
export const envList = (name: string, fallback: number[]) => {
  const v = process.env[name];
  if (!v) return fallback;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`${name} must be a comma-separated list of positive integers`);
  return xs;
};

/** The kit's sleep, for bench/runtime*.ts (which import it from here). */
