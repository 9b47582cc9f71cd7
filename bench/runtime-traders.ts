import { randomUUID } from 'node:crypto';
import type { FilterGroup } from '../machine-runtime/trader-schema';
import type { Trader } from '../store/types';
import { INTERVALS, LIVE_START } from './runtime-market';

/** 50 users' worth of traders: the usual filter shapes with varied periods, 100 symbols each. */
export function makeTraders(count: number, symbols: string[], userId: string): Trader[] {
  const shapes = (i: number): FilterGroup => {
    const p = 10 + (i % 7);
    switch (i % 5) {
      case 0:
        return { all: [{ left: { indicator: 'rsi', period: p }, op: '<', right: 35 }] };
      case 1:
        return {
          all: [
            { left: { indicator: 'ema', period: p }, op: 'crossesAbove', right: { indicator: 'ema', period: 2 * p } },
          ],
        };
      case 2:
        return {
          all: [
            { left: { indicator: 'macd', fast: 12, slow: 26, signal: 9, output: 'histogram' }, op: '>', right: 0 },
            { left: { indicator: 'price', field: 'close' }, op: '>', right: { indicator: 'sma', period: 5 * p } },
          ],
        };
      case 3:
        return {
          any: [
            {
              left: { indicator: 'price', field: 'close' },
              op: '<',
              right: { indicator: 'bollinger', period: 2 * p, stdDev: 2, output: 'lower' },
            },
            { left: { indicator: 'atr', period: p }, op: '>', right: 2 },
          ],
        };
      default:
        return {
          all: [
            { left: { indicator: 'volumeRatio', period: 2 * p }, op: '>', right: 2 },
            { left: { indicator: 'change', period: 5 }, op: '>', right: 0.5 },
          ],
        };
    }
  };
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    userId,
    name: `trader ${i}`,
    enabled: true,
    updatedAt: new Date(LIVE_START),
    definition: {
      symbols: Array.from({ length: Math.min(100, symbols.length) }, (_, k) => symbols[(i * 37 + k) % symbols.length]!),
      interval: INTERVALS[i % INTERVALS.length],
      filter: shapes(i),
      fireOn: 'change',
    },
  }));
}
