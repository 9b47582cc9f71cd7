import { round, type Row } from './report';

/** The middle value, or the mean of the two middle ones (report.ts's `median` is nearest-rank: the lower of two). */
function middle(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Repeated runs to one row per group (rows with the same `keys` values): the median of every numeric
 * column; other columns keep the first run's value; `run` says how many were folded.
 */
export function medianRows(rows: Row[], keys: string[]): Row[] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = JSON.stringify(keys.map((c) => r[c]));
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((group) => {
    const out: Row = {};
    for (const col of Object.keys(group[0]!)) {
      const values = group.map((r) => r[col]);
      out[col] =
        keys.includes(col) || !values.every((v) => typeof v === 'number')
          ? group[0]![col]!
          : round(middle(values as number[]), 2);
    }
    out.run = `median of ${group.length}`;
    return out;
  });
}

/** Per matching row (same `match` values), `num`'s figure over `den`'s for each of `cols`, side by side. */
export function ratioRows(
  rows: Row[],
  opts: { by: string; num: string; den: string; match: string[]; cols: string[] },
): Row[] {
  const key = (r: Row) => JSON.stringify(opts.match.map((c) => r[c]));
  const dens = new Map(rows.filter((r) => r[opts.by] === opts.den).map((r) => [key(r), r]));
  return rows
    .filter((r) => r[opts.by] === opts.num && dens.has(key(r)))
    .map((r) => {
      const d = dens.get(key(r))!;
      const out: Row = Object.fromEntries(opts.match.map((c) => [c, r[c]!]));
      out[opts.by] = `${opts.num} / ${opts.den}`;
      for (const c of opts.cols)
        if (typeof r[c] === 'number' && typeof d[c] === 'number' && d[c] !== 0)
          out[c] = round((r[c] as number) / (d[c] as number), 2);
      return out;
    });
}
