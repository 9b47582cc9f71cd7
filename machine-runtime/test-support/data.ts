import { readFileSync, readdirSync } from 'node:fs';
import { recordedDataDir } from '../../test/kit/data';
import path from 'node:path';
import { intervalMs, toMs, type Candle } from '../candles';

const dataDir = recordedDataDir;

/** Reads a recorded CSV directly (independent of the replay server's loader). */
export function readCsv(symbol: string, interval: string): Candle[] {
  const file = readdirSync(dataDir).find((f) => f.startsWith(`${symbol}-${interval}-`) && f.endsWith('.csv'));
  if (!file) throw new Error(`no ${symbol} ${interval} CSV in ${dataDir}`);
  const ms = intervalMs(interval);
  const lines = readFileSync(path.join(dataDir, file), 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const [t, o, h, l, c, v] = line.split(',');
    const openTime = /^\d+$/.test(t!) ? toMs(Number(t)) : Date.parse(`${t!.replace(' ', 'T')}Z`);
    return {
      symbol,
      interval,
      openTime,
      closeTime: openTime + ms - 1,
      open: Number(o),
      high: Number(h),
      low: Number(l),
      close: Number(c),
      volume: Number(v),
    };
  });
}

/** Plain simple moving average, written independently of trading-signals, for expectations. */
export function plainSma(values: number[], period: number): (number | null)[] {
  return values.map((_, i) => {
    if (i + 1 < period) return null;
    let sum = 0;
    for (let j = i + 1 - period; j <= i; j++) sum += values[j]!;
    return sum / period;
  });
}
