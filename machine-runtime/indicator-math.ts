/**
 * The indicators of trading-signals v8 (SMA, EMA, WSMA, RSI, MACD, Bollinger, ATR), computed with
 * the same floating-point operations in the same order, so every value is bit for bit the library's
 * (indicator-math.unit.test.ts checks it against the library), without its per-update costs: array
 * `push`/`shift` and `reduce` closures per window, two arrays allocated per Bollinger update, a result
 * object per MACD / Bollinger update, and the SMA inside every WSMA (RSI, ATR), which the library
 * keeps updating long after its only use, the first value. A window is a ring of doubles, summed
 * oldest first from 0, as `Array.reduce` sums it.
 *
 * Each `add` takes one input; `value` (or the named outputs) is the library's `getResult()` after
 * it, NaN where that is null. `required` is the library's `getRequiredInputs()`.
 */

/** The last `n` inputs, oldest first. */
class Window {
  private readonly buf: Float64Array;
  private head = 0;
  size = 0;
  constructor(readonly n: number) {
    this.buf = new Float64Array(n);
  }
  push(x: number): void {
    let i = this.head + this.size;
    if (i >= this.n) i -= this.n;
    this.buf[i] = x;
    if (this.size < this.n) this.size++;
    else if (++this.head === this.n) this.head = 0;
  }
  get full(): boolean {
    return this.size === this.n;
  }
  /** `getAverage`: the sum (from 0, oldest first) ÷ the count. */
  average(): number {
    const { buf, head, size } = this;
    let sum = 0;
    for (let k = head; k < size; k++) sum += buf[k]!;
    for (let k = 0; k < head; k++) sum += buf[k]!;
    return sum / size;
  }
  /** `getStandardDeviation(values, middle)`: population, squared differences summed in order. */
  deviation(middle: number): number {
    const { buf, head, size } = this;
    let sum = 0;
    for (let k = head; k < size; k++) {
      const d = buf[k]! - middle;
      sum += d * d;
    }
    for (let k = 0; k < head; k++) {
      const d = buf[k]! - middle;
      sum += d * d;
    }
    return Math.sqrt(sum / size);
  }
}

export class Sma {
  private readonly window: Window;
  value = NaN;
  constructor(readonly required: number) {
    this.window = new Window(required);
  }
  add(x: number): void {
    this.window.push(x);
    if (this.window.full) this.value = this.window.average();
  }
}

/** EMA seeded with the first input; its result exists from the `n`th input on. */
export class Ema {
  /** The running value from the first input on (the library's `result`, returned by `update`). */
  raw = NaN;
  private count = 0;
  private readonly weight: number;
  constructor(readonly required: number) {
    this.weight = 2 / (required + 1);
  }
  add(x: number): number {
    this.count++;
    const previous = this.count === 1 ? x : this.raw;
    this.raw = x * this.weight + previous * (1 - this.weight);
    return this.raw;
  }
  get value(): number {
    return this.count < this.required ? NaN : this.raw;
  }
}

/** Wilder's smoothing: the SMA of the first `n` inputs, then `(x − prev) × 1/n + prev`. */
export class Wsma {
  private window: Window | undefined;
  private readonly factor: number;
  value = NaN;
  constructor(readonly required: number) {
    this.window = new Window(required);
    this.factor = 1 / required;
  }
  add(x: number): void {
    if (this.window === undefined) {
      this.value = (x - this.value) * this.factor + this.value;
      return;
    }
    this.window.push(x);
    if (!this.window.full) return;
    this.value = this.window.average();
    this.window = undefined;
  }
}

export class Rsi {
  private readonly gain: Wsma;
  private readonly loss: Wsma;
  private previous = NaN;
  private count = 0;
  value = NaN;
  readonly required: number;
  constructor(private readonly n: number) {
    this.gain = new Wsma(n);
    this.loss = new Wsma(n);
    this.required = n + 1;
  }
  add(x: number): void {
    const previous = this.previous;
    this.previous = x;
    // The library keeps the last n prices and needs two of them: RSI(1) never has a value.
    if (++this.count < 2 || this.n < 2) return;
    if (x > previous) {
      this.loss.add(0);
      this.gain.add(x - previous);
    } else {
      this.loss.add(previous - x);
      this.gain.add(0);
    }
    const gain = this.gain.value;
    if (Number.isNaN(gain)) return;
    const loss = this.loss.value;
    this.value = loss === 0 ? 100 : 100 - 100 / (gain / loss + 1);
  }
}

export class Macd {
  private readonly fast: Ema;
  private readonly slow: Ema;
  private readonly signalEma: Ema;
  private count = 0;
  macd = NaN;
  signal = NaN;
  histogram = NaN;
  readonly required: number;
  constructor(fast: number, slow: number, signal: number) {
    this.fast = new Ema(fast);
    this.slow = new Ema(slow);
    this.signalEma = new Ema(signal);
    this.required = slow;
  }
  add(x: number): void {
    const short = this.fast.add(x);
    const long = this.slow.add(x);
    if (this.count < this.required) this.count++;
    if (this.count < this.required) return;
    const macd = short - long;
    const signal = this.signalEma.add(macd);
    this.macd = macd;
    this.signal = signal;
    this.histogram = macd - signal;
  }
}

export class Bollinger {
  private readonly window: Window;
  upper = NaN;
  middle = NaN;
  lower = NaN;
  constructor(
    readonly required: number,
    private readonly multiplier: number,
  ) {
    this.window = new Window(required);
  }
  add(x: number): void {
    const w = this.window;
    w.push(x);
    if (!w.full) return;
    const middle = w.average();
    // `average || getAverage(values)`: a zero average is computed again, to the same zero.
    const deviation = w.deviation(middle || w.average());
    this.lower = middle - deviation * this.multiplier;
    this.middle = middle;
    this.upper = middle + deviation * this.multiplier;
  }
}

/** Wilder-smoothed true range. */
export class Atr {
  private readonly smoothing: Wsma;
  private previousClose: number | undefined;
  value = NaN;
  readonly required: number;
  constructor(n: number) {
    this.smoothing = new Wsma(n);
    this.required = n;
  }
  add(high: number, low: number, close: number): void {
    const highLow = high - low;
    const previous = this.previousClose;
    const range =
      previous === undefined ? highLow : Math.max(highLow, Math.abs(high - previous), Math.abs(low - previous));
    this.previousClose = close;
    this.smoothing.add(range);
    this.value = this.smoothing.value;
  }
}
