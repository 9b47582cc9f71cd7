import { scanKlineFrame } from './feed-frames';

describe('reading kline frames without JSON.parse', () => {
  // A frame as recorded from Binance (../shared/reference/binance-market-data.md, §3).
  const recorded =
    '{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,' +
    '"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000",' +
    '"h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000",' +
    '"V":"58.00000000","Q":"20.46240000","B":"0"}}}';

  /** What the general path makes of a frame: JSON.parse, then Number() per field. */
  const viaJson = (text: string) => {
    const { data } = JSON.parse(text) as { data: { E: number; k: Record<string, string | number | boolean> } };
    const k = data.k;
    return {
      symbol: k.s,
      interval: k.i,
      openTime: Number(k.t),
      closeTime: Number(k.T),
      open: Number(k.o),
      high: Number(k.h),
      low: Number(k.l),
      close: Number(k.c),
      volume: Number(k.v),
      closed: k.x,
      eventTime: data.E,
    };
  };

  const isJson = (text: string) => {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  };

  test("Binance's own layout, forming or closed, reads exactly as JSON.parse reads it", () => {
    const closed = recorded.replace('"x":false', '"x":true');
    const micro = recorded.replace('"t":1633998480000', '"t":1633998480000000');
    for (const frame of [recorded, closed, micro]) {
      expect(scanKlineFrame(frame)).toEqual(viaJson(frame));
    }
    expect(scanKlineFrame(closed)!.closed).toBe(true);
  });

  test('anything laid out otherwise is left to JSON.parse (the general path judges it)', () => {
    const others = [
      JSON.stringify(JSON.parse(recorded), null, 1), // whitespace
      recorded.replace('"o":"0.35270000","c":"0.35280000"', '"c":"0.35280000","o":"0.35270000"'), // key order
      recorded.replace('"s":"NKNUSDT","i"', '"s":"NKN\\u0055SDT","i"'), // an escape
      recorded.replace('"t":1633998480000', '"t":"1633998480000"'), // a number as a string
      recorded.replace('"x":false', '"x":0'), // not a boolean
      recorded.replace('"B":"0"}}}', '"B":"0","z":1}}}'), // an extra field
      recorded.slice(0, -1), // truncated
      `${recorded} `, // trailing bytes
      '{"result":null,"id":1}',
    ];
    for (const frame of others) expect(scanKlineFrame(frame)).toBeUndefined();
  });

  test('valid JSON one character off is read as JSON.parse reads it, or left to it', () => {
    // Every deletion, insertion and substitution of a character that matters to the layout.
    const chars = ['"', '\\', ' ', '0', '1', 'e', '-', '+', '.', ',', ':', '{', '}', 'x'];
    const variants: string[] = [];
    for (let i = 0; i <= recorded.length; i++) {
      variants.push(recorded.slice(0, i) + recorded.slice(i + 1));
      for (const c of chars)
        variants.push(recorded.slice(0, i) + c + recorded.slice(i), recorded.slice(0, i) + c + recorded.slice(i + 1));
    }
    let read = 0;
    for (const frame of variants) {
      const scanned = scanKlineFrame(frame);
      if (scanned === undefined || !isJson(frame)) continue;
      read++;
      expect(scanned).toEqual(viaJson(frame));
    }
    expect(read).toBeGreaterThan(100); // digits changed inside numbers and strings still read in place
  });

  test('UTF-8 inside strings is decoded as the text would be; decimals are exactly Number()', () => {
    const utf8 = [
      recorded.replaceAll('NKNUSDT', 'NKNÜSDT'), // in the symbol
      recorded.replace('"q":"9116.04600000"', '"q":"9116€"'), // in a field read past
      recorded.replace('"o":"0.35270000"', '"o":"0.3527é"'), // in a price: NaN, as Number() says
    ];
    for (const frame of utf8) expect(scanKlineFrame(frame)).toEqual(viaJson(frame));
    // Digits summed in place and divided once must be Number()'s correctly rounded value, bit for bit.
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let n = 0; n < 20_000; n++) {
      const digits = Array.from({ length: 1 + Math.floor(random() * 18) }, () => Math.floor(random() * 10)).join('');
      const point = Math.floor(random() * (digits.length + 1));
      const price = random() < 0.1 ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`;
      const frame = recorded.replace('"c":"0.35280000"', `"c":"${price}"`);
      expect(Object.is(scanKlineFrame(frame)!.close, Number(price))).toBe(true);
    }
  });
});
