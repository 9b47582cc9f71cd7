import { ATR, BollingerBands, EMA, MACD, RSI, SMA, getPercentageChange } from 'trading-signals';
import { RingBuffer, type Candle } from './candles';
import type { Operand } from './trader-schema';

/**
 * One instance per (symbol, interval, indicator config), shared by every trader that uses it, fed
 * incrementally once per closed candle. Each keeps its last two results so crossovers need no
 * recomputation. The numbers are trading-signals' own (conventions in README.md).
 */
interface Family {
  update(c: Candle): void;
  /** Output `name` now (`which = 0`) or one candle earlier (`which = 1`); null while not stable. */
  read(name: string, which: 0 | 1): number | null;
}

class LibFamily<R> implements Family {
  private results: [R | null, R | null] = [null, null];
  constructor(
    private readonly indicator: { add(input: never): unknown; getResult(): R | null },
    private readonly input: (c: Candle) => unknown,
    private readonly pick: (r: R, name: string) => number,
  ) {}
  update(c: Candle): void {
    this.indicator.add(this.input(c) as never);
    this.results = [this.indicator.getResult(), this.results[0]];
  }
  read(name: string, which: 0 | 1): number | null {
    const r = this.results[which];
    return r === null ? null : this.pick(r, name);
  }
}

const num = (r: number) => r;
const field = (r: Record<string, number>, name: string) => r[name] ?? NaN;

/** Identifies the shared indicator instance an operand reads from. */
export function familyKey(o: Operand): string {
  switch (o.indicator) {
    case 'price':
    case 'volume':
      return 'candle';
    case 'change':
      return `change:${o.period}`;
    case 'rsi':
    case 'ema':
    case 'sma':
    case 'atr':
      return `${o.indicator}:${o.period}`;
    case 'macd':
      return `macd:${o.fast}:${o.slow}:${o.signal}`;
    case 'bollinger':
      return `bb:${o.period}:${o.stdDev}`;
    case 'volumeSma':
    case 'volumeRatio':
      return `vsma:${o.period}`;
  }
}

/** Identifies one output value: used for crossovers and in signal payloads. */
export function operandKey(o: Operand): string {
  switch (o.indicator) {
    case 'price':
      return `price.${o.field}`;
    case 'volume':
      return 'volume';
    case 'volumeRatio':
      return `vratio:${o.period}`;
    case 'macd':
    case 'bollinger':
      return `${familyKey(o)}.${o.output}`;
    default:
      return familyKey(o);
  }
}

function createFamily(o: Operand, candles: RingBuffer<Candle>): Family {
  const close = (c: Candle) => c.close;
  switch (o.indicator) {
    case 'price':
    case 'volume':
      return {
        update: () => undefined,
        read: (name, which) => {
          const c = candles.at(-1 - which);
          if (!c) return null;
          return name === 'volume' ? c.volume : c[name as 'close' | 'open' | 'high' | 'low'];
        },
      };
    case 'change': {
      const n = o.period;
      return {
        update: () => undefined,
        read: (_name, which) => {
          const now = candles.at(-1 - which);
          const then = candles.at(-1 - which - n);
          return now && then && then.close !== 0 ? getPercentageChange(then.close, now.close) : null;
        },
      };
    }
    case 'rsi':
      return new LibFamily<number>(new RSI(o.period), close, num);
    case 'ema':
      return new LibFamily<number>(new EMA(o.period), close, num);
    case 'sma':
      return new LibFamily<number>(new SMA(o.period), close, num);
    case 'atr':
      return new LibFamily<number>(new ATR(o.period), (c) => ({ high: c.high, low: c.low, close: c.close }), num);
    case 'macd':
      return new LibFamily<Record<string, number>>(
        new MACD(new EMA(o.fast), new EMA(o.slow), new EMA(o.signal)),
        close,
        field,
      );
    case 'bollinger':
      return new LibFamily<Record<string, number>>(new BollingerBands(o.period, o.stdDev), close, field);
    case 'volumeSma':
    case 'volumeRatio':
      return new LibFamily<number>(new SMA(o.period), (c) => c.volume, num);
  }
}

/** Candles and indicators of one symbol × interval. */
export class StreamState {
  readonly candles: RingBuffer<Candle>;
  private readonly families = new Map<string, Family>();

  constructor(capacity: number) {
    this.candles = new RingBuffer<Candle>(capacity);
  }

  get familyCount(): number {
    return this.families.size;
  }

  get lastOpenTime(): number | undefined {
    return this.candles.last()?.openTime;
  }

  /** Creates what `operands` need; a new indicator catches up on the buffered candles. */
  require(operands: Operand[]): void {
    for (const o of operands) {
      const key = familyKey(o);
      if (this.families.has(key)) continue;
      const family = createFamily(o, this.candles);
      for (const c of this.candles.toArray()) family.update(c);
      this.families.set(key, family);
    }
  }

  /** Drops indicators no trader uses any more. */
  retain(operands: Operand[]): void {
    const keep = new Set(operands.map(familyKey));
    for (const key of this.families.keys()) if (!keep.has(key)) this.families.delete(key);
  }

  add(c: Candle): void {
    this.candles.push(c);
    for (const f of this.families.values()) f.update(c);
  }

  value(o: Operand, which: 0 | 1 = 0): number | null {
    const family = this.families.get(familyKey(o));
    if (!family) return null;
    switch (o.indicator) {
      case 'price':
        return family.read(o.field, which);
      case 'volume':
        return family.read('volume', which);
      case 'macd':
      case 'bollinger':
        return family.read(o.output, which);
      case 'volumeRatio': {
        const avg = family.read('', which);
        const c = this.candles.at(-1 - which);
        return avg && c ? c.volume / avg : null;
      }
      default:
        return family.read('', which);
    }
  }
}
