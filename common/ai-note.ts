/**
 * The AI note on a signal (docs/technical-description.md §6): asked for by the machine, made where the key lives (the API:
 * `POST /v1/machine/ai-note`). A machine never holds `GEMINI_API_KEY`, a project-wide secret, since
 * it runs user-defined filters. This module is what both sides agree on: the request and the prompt.
 */
export interface AiNoteRequest {
  traderName: string;
  symbol: string;
  interval: string;
  /** Open time of the candle that fired, ms since the epoch. */
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Indicator values at the firing, by name (null: not warmed up). */
  values: Record<string, number | null>;
}

export const AI_NOTE_MAX_CHARS = 500;

export function aiNotePrompt(r: AiNoteRequest): string {
  const values = Object.entries(r.values)
    .map(([k, v]) => `${k}=${v === null ? 'n/a' : Number(v.toPrecision(8))}`)
    .join(', ');
  return (
    `A crypto screener filter named "${r.traderName}" just matched ${r.symbol} on the ${r.interval} chart ` +
    `(candle opened ${new Date(r.openTime).toISOString()}: open ${r.open}, high ${r.high}, low ${r.low}, ` +
    `close ${r.close}, volume ${r.volume}). Indicator values: ${values}. ` +
    'In at most two short sentences, say what this setup usually means. No financial advice.'
  );
}

export type AiNoteWriter = (r: AiNoteRequest) => Promise<string>;

export const GEMINI_API_BASE = 'https://generativelanguage.googleapis.com';

/**
 * Gemini writes the note, through its documented REST method `models.generateContent`
 * (`POST /v1beta/models/{model}:generateContent`, key in `x-goog-api-key`): no SDK to load.
 * Bounded by `timeoutMs` and never retried: the note is a nicety, the signal must not wait for it.
 * `baseUrl` points it at a stand-in in tests.
 */
export function createGeminiNoteWriter(opts: {
  apiKey: string;
  model?: string;
  timeoutMs?: number;
  baseUrl?: string;
  fetch?: typeof fetch;
}): AiNoteWriter {
  const timeoutMs = opts.timeoutMs ?? 4_000;
  const model = opts.model ?? 'gemini-2.5-flash';
  const url = new URL(`/v1beta/models/${encodeURIComponent(model)}:generateContent`, opts.baseUrl ?? GEMINI_API_BASE);
  const http = opts.fetch ?? fetch;
  return async (r) => {
    const res = await http(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': opts.apiKey },
      body: JSON.stringify({
        contents: [{ role: 'user', parts: [{ text: aiNotePrompt(r) }] }],
        generationConfig: { maxOutputTokens: 120, temperature: 0.3 },
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`Gemini generateContent: HTTP ${res.status}`);
    const json = (await res.json()) as { candidates?: { content?: { parts?: { text?: string }[] } }[] };
    const text = (json.candidates?.[0]?.content?.parts ?? []).map((p) => p.text ?? '').join('');
    return text.trim().slice(0, AI_NOTE_MAX_CHARS);
  };
}
