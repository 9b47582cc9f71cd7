import type { AiNoteRequest } from '../common/ai-note';
import { signMachineApiToken } from '../common/machine-api-token';
import type { Firing } from './engine';

export type Annotator = (f: Firing) => Promise<string>;

/**
 * A short note on a signal, asked of the control plane (`POST <apiUrl>/v1/machine/ai-note`), which
 * holds the Gemini key: the machine holds no project-wide secret. Each call carries a 60-second token
 * signed with this machine's key (`purpose: machine-api`, `sub` = its user), so the API knows whose
 * budget it spends. Bounded by `timeoutMs`: the note is a nicety, the signal must not wait for it.
 */
export function createApiAnnotator(opts: {
  apiUrl: string;
  userId: string;
  machineKey: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}): Annotator {
  const timeoutMs = opts.timeoutMs ?? 4_000;
  const url = new URL('/v1/machine/ai-note', opts.apiUrl).toString();
  const http = opts.fetch ?? fetch;
  return async (f) => {
    const token = await signMachineApiToken(opts.machineKey, opts.userId);
    const c = f.candle;
    const body: AiNoteRequest = {
      ...{ traderName: f.trader.name, symbol: c.symbol, interval: c.interval, openTime: c.openTime },
      ...{ open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume, values: f.values },
    };
    const res = await http(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`ai note: HTTP ${res.status}`);
    const { note } = (await res.json()) as { note?: unknown };
    return typeof note === 'string' ? note : '';
  };
}
