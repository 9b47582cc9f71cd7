import { getPercentageChange } from 'trading-signals';
import { CandleSeries, type Candle } from './candles';
import { Atr, Bollinger, Ema, Macd, Rsi, Sma } from './indicator-math';
import type { Operand } from './trader-schema';

/**
 * One output of an indicator: its value on the newest closed candle (`cur`) and on the one before
 * (`prev`, for crossovers). NaN while the value does not exist yet (too few candles), so every
 * comparison with it is false without a separate check. Compiled trader filters hold slots directly:
 * reading one is a property load, not a lookup.
 */
export interface Slot {
  cur: number;
  prev: number;
}

const newSlot = (): Slot => ({ cur: NaN, prev: NaN });
const shift = (s: Slot, v: number) => {
  s.prev = s.cur;
  s.cur = v;
};

/**
 * One instance per (symbol, interval, indicator config), shared by every trader that uses it, fed
 * incrementally once per closed candle. The numbers are trading-signals' own, computed bit for bit
 * as the library computes them (indicator-math.ts; conventions in README.md).
 */
interface Family {
  /** Outputs by name (`''` for a single-output indicator). */
  readonly slots: Record<string, Slot>;
  /** Takes in the candle `back` steps before the newest one in `series` (0 = the newest, live). */
  add(series: CandleSeries, back: number): void;
}

/** SMA, EMA or RSI of the close. */
class CloseFamily implements Family {
  readonly slots = { '': newSlot() };
  constructor(private readonly calc: Sma | Ema | Rsi) {}
  add(s: CandleSeries, back: number): void {
    this.calc.add(s.close[s.index(back)]!);
    shift(this.slots[''], this.calc.value);
  }
}

/** SMA of the volume, and the volume ÷ that average (`volumeRatio`). */
class VolumeFamily implements Family {
  readonly slots = { '': newSlot(), ratio: newSlot() };
  private readonly sma: Sma;
  constructor(period: number) {
    this.sma = new Sma(period);
  }
  add(s: CandleSeries, back: number): void {
    const volume = s.volume[s.index(back)]!;
    this.sma.add(volume);
    const avg = this.sma.value;
    shift(this.slots[''], avg);
    shift(this.slots.ratio, avg ? volume / avg : NaN);
  }
}

class AtrFamily implements Family {
  readonly slots = { '': newSlot() };
  private readonly atr: Atr;
  constructor(period: number) {
    this.atr = new Atr(period);
  }
  add(s: CandleSeries, back: number): void {
    const i = s.index(back);
    this.atr.add(s.high[i]!, s.low[i]!, s.close[i]!);
    shift(this.slots[''], this.atr.value);
  }
}

class MacdFamily implements Family {
  readonly slots = { macd: newSlot(), signal: newSlot(), histogram: newSlot() };
  constructor(private readonly macd: Macd) {}
  add(s: CandleSeries, back: number): void {
    const m = this.macd;
    m.add(s.close[s.index(back)]!);
    shift(this.slots.macd, m.macd);
    shift(this.slots.signal, m.signal);
    shift(this.slots.histogram, m.histogram);
  }
}

class BollingerFamily implements Family {
  readonly slots = { upper: newSlot(), middle: newSlot(), lower: newSlot() };
  constructor(private readonly bands: Bollinger) {}
  add(s: CandleSeries, back: number): void {
    const b = this.bands;
    b.add(s.close[s.index(back)]!);
    shift(this.slots.upper, b.upper);
    shift(this.slots.middle, b.middle);
    shift(this.slots.lower, b.lower);
  }
}

/** Open/high/low/close/volume of the newest and previous candle. */
class CandleFamily implements Family {
  readonly slots = { close: newSlot(), open: newSlot(), high: newSlot(), low: newSlot(), volume: newSlot() };
  add(s: CandleSeries, back: number): void {
    const i = s.index(back);
    shift(this.slots.close, s.close[i]!);
    shift(this.slots.open, s.open[i]!);
    shift(this.slots.high, s.high[i]!);
    shift(this.slots.low, s.low[i]!);
    shift(this.slots.volume, s.volume[i]!);
  }
}

/** % change of the close over `period` candles, read from the series (bounded by its capacity). */
class ChangeFamily implements Family {
  readonly slots = { '': newSlot() };
  constructor(private readonly period: number) {}
  add(s: CandleSeries, back: number): void {
    const now = s.index(back);
    const then = s.index(back + this.period);
    const base = then < 0 ? 0 : s.close[then]!;
    shift(this.slots[''], base !== 0 ? getPercentageChange(base, s.close[now]!) : NaN);
  }
}

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

/** The output of its family an operand reads. */
function outputOf(o: Operand): string {
  switch (o.indicator) {
    case 'price':
      return o.field;
    case 'volume':
      return 'volume';
    case 'macd':
    case 'bollinger':
      return o.output;
    case 'volumeRatio':
      return 'ratio';
    default:
      return '';
  }
}

function createFamily(o: Operand): Family {
  switch (o.indicator) {
    case 'price':
    case 'volume':
      return new CandleFamily();
    case 'change':
      return new ChangeFamily(o.period);
    case 'rsi':
      return new CloseFamily(new Rsi(o.period));
    case 'ema':
      return new CloseFamily(new Ema(o.period));
    case 'sma':
      return new CloseFamily(new Sma(o.period));
    case 'atr':
      return new AtrFamily(o.period);
    case 'macd':
      return new MacdFamily(new Macd(o.fast, o.slow, o.signal));
    case 'bollinger':
      return new BollingerFamily(new Bollinger(o.period, o.stdDev));
    case 'volumeSma':
    case 'volumeRatio':
      return new VolumeFamily(o.period);
  }
}

/** Read by an operand whose indicator does not exist (never true in any comparison). */
const missing: Readonly<Slot> = Object.freeze({ cur: NaN, prev: NaN });

/** Candles (columnar) and indicators of one symbol × interval. */
export class StreamState {
  readonly candles: CandleSeries;
  private readonly families = new Map<string, Family>();
  private list: Family[] = [];

  constructor(capacity: number, symbol = '', interval = '') {
    this.candles = new CandleSeries(symbol, interval, capacity);
  }

  get familyCount(): number {
    return this.families.size;
  }

  get lastOpenTime(): number | undefined {
    return this.candles.lastOpenTime();
  }

  /** Creates what `operands` need; a new indicator catches up on the buffered candles. */
  require(operands: Operand[]): void {
    for (const o of operands) {
      const key = familyKey(o);
      if (this.families.has(key)) continue;
      const family = createFamily(o);
      for (let back = this.candles.size - 1; back >= 0; back--) family.add(this.candles, back);
      this.families.set(key, family);
    }
    this.list = [...this.families.values()];
  }

  /** Drops indicators no trader uses any more. */
  retain(operands: Operand[]): void {
    const keep = new Set(operands.map(familyKey));
    for (const key of this.families.keys()) if (!keep.has(key)) this.families.delete(key);
    this.list = [...this.families.values()];
  }

  add(c: Candle): void {
    this.candles.push(c);
    for (let k = 0; k < this.list.length; k++) this.list[k]!.add(this.candles, 0);
  }

  /** The slot `o` reads; stays valid (and updated in place) until the indicator is dropped. */
  slot(o: Operand): Readonly<Slot> {
    return this.families.get(familyKey(o))?.slots[outputOf(o)] ?? missing;
  }

  /** `o` now (`which = 0`) or one candle earlier (`which = 1`); null while not available. */
  value(o: Operand, which: 0 | 1 = 0): number | null {
    const s = this.slot(o);
    const v = which === 0 ? s.cur : s.prev;
    return Number.isNaN(v) ? null : v;
  }
}
