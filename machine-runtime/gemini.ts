import type { GoogleGenAI } from '@google/genai';
import type { Firing } from './engine';

export type Annotator = (f: Firing) => Promise<string>;

/**
 * A short note on a signal from Gemini. Bounded by `timeoutMs` and no SDK retries: the note is a
 * nicety, the signal must not wait for it.
 */
export function createGeminiAnnotator(opts: {
  apiKey: string;
  model?: string;
  timeoutMs?: number;
  baseUrl?: string;
}): Annotator {
  const timeoutMs = opts.timeoutMs ?? 4_000;
  // Loaded on first use: the SDK is ~15 MB of RSS that a machine without a key never needs.
  let ai: Promise<GoogleGenAI> | undefined;
  const client = () =>
    (ai ??= import('@google/genai').then(
      ({ GoogleGenAI }) =>
        new GoogleGenAI({
          apiKey: opts.apiKey,
          httpOptions: { baseUrl: opts.baseUrl, timeout: timeoutMs, retryOptions: { attempts: 1 } },
        }),
    ));
  return async (f) => {
    const c = f.candle;
    const values = Object.entries(f.values)
      .map(([k, v]) => `${k}=${v === null ? 'n/a' : Number(v.toPrecision(8))}`)
      .join(', ');
    const prompt =
      `A crypto screener filter named "${f.trader.name}" just matched ${c.symbol} on the ${c.interval} chart ` +
      `(candle opened ${new Date(c.openTime).toISOString()}: open ${c.open}, high ${c.high}, low ${c.low}, ` +
      `close ${c.close}, volume ${c.volume}). Indicator values: ${values}. ` +
      'In at most two short sentences, say what this setup usually means. No financial advice.';
    const res = await (
      await client()
    ).models.generateContent({
      model: opts.model ?? 'gemini-2.5-flash',
      contents: prompt,
      config: { abortSignal: AbortSignal.timeout(timeoutMs), maxOutputTokens: 120, temperature: 0.3 },
    });
    return (res.text ?? '').trim().slice(0, 500);
  };
}
