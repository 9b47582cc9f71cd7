import { ATR, BollingerBands, EMA, MACD, RSI, SMA, getPercentageChange } from 'trading-signals';
import { CandleSeries, type Candle } from './candles';
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
 * incrementally once per closed candle. The numbers are trading-signals' own (conventions in README.md).
 */
interface Family {
  /** Outputs by name (`''` for a single-output indicator). */
  readonly slots: Record<string, Slot>;
  /** Takes in the candle `back` steps before the newest one in `series` (0 = the newest, live). */
  add(series: CandleSeries, back: number): void;
}

class LibFamily implements Family {
  readonly slots: Record<string, Slot>;
  private readonly outputs: [string, Slot][];
  private inputs = 0;
  /** Below this many inputs there is no result; asking would make trading-signals throw and catch. */
  private readonly required: number;
  constructor(
    private readonly indicator: { add(input: never): unknown; getResult(): unknown; getRequiredInputs(): number },
    private readonly input: (s: CandleSeries, i: number) => unknown,
    outputs: string[] = [''],
    /** Volume ÷ this average, for `volumeRatio`. */
    private readonly ratio?: Slot,
  ) {
    this.required = indicator.getRequiredInputs();
    this.outputs = outputs.map((name) => [name, newSlot()]);
    this.slots = Object.fromEntries(this.outputs);
    if (ratio) this.slots.ratio = ratio;
  }
  add(series: CandleSeries, back: number): void {
    const i = series.index(back);
    this.indicator.add(this.input(series, i) as never);
    const r = ++this.inputs < this.required ? null : this.indicator.getResult();
    if (this.outputs.length === 1) {
      shift(this.outputs[0]![1], r === null ? NaN : (r as number));
    } else {
      for (const [name, slot] of this.outputs)
        shift(slot, r === null ? NaN : ((r as Record<string, number>)[name] ?? NaN));
    }
    if (this.ratio) {
      const avg = this.outputs[0]![1].cur;
      shift(this.ratio, avg ? series.volume[i]! / avg : NaN);
    }
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

const close = (s: CandleSeries, i: number) => s.close[i];
const volume = (s: CandleSeries, i: number) => s.volume[i];
// trading-signals' ATR keeps the object it is given (as the previous candle): a fresh one each time.
const hlc = (s: CandleSeries, i: number) => ({ high: s.high[i]!, low: s.low[i]!, close: s.close[i]! });

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
      return new LibFamily(new RSI(o.period), close);
    case 'ema':
      return new LibFamily(new EMA(o.period), close);
    case 'sma':
      return new LibFamily(new SMA(o.period), close);
    case 'atr':
      return new LibFamily(new ATR(o.period), hlc);
    case 'macd':
      return new LibFamily(new MACD(new EMA(o.fast), new EMA(o.slow), new EMA(o.signal)), close, [
        'macd',
        'signal',
        'histogram',
      ]);
    case 'bollinger':
      return new LibFamily(new BollingerBands(o.period, o.stdDev), close, ['upper', 'middle', 'lower']);
    case 'volumeSma':
    case 'volumeRatio':
      return new LibFamily(new SMA(o.period), volume, [''], newSlot());
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
