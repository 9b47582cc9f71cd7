import { signMachineApiToken } from '../common/machine-api-token';
import type { MachineRow, NewTradeSignal, RuntimeCheckpointRow, TradeSignalRow, Trader, UserStore } from './types';

/**
 * A user's store through the control plane's machine-facing API (`/v1/machine/*`), for machines in
 * local mode and plain-Postgres deployments: the machine holds no database credential, only its
 * per-user machine key, with which it signs a 60-second token per call. The API applies every call
 * under RLS as that user. (With Supabase, machines use its REST with the anon key and their token.)
 */
export function createMachineApiUserStore(opts: {
  apiUrl: string;
  userId: string;
  machineKey: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): UserStore & { close(): Promise<void> } {
  const http = opts.fetch ?? fetch;
  async function call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    const token = await signMachineApiToken(opts.machineKey, opts.userId);
    const res = await http(new URL(path, opts.apiUrl), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 200);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not JSON: the raw start of the body says enough
      }
      throw new Error(`machine API ${method} ${path}: HTTP ${res.status}: ${detail}`);
    }
    // 204 (a write with nothing to say) has no body.
    return (text ? JSON.parse(text) : undefined) as T;
  }
  const date = (v: unknown) => (v == null ? null : new Date(v as string));
  const toTrader = (t: Trader): Trader => ({ ...t, updatedAt: date(t.updatedAt) as Date });
  const toSignal = (s: TradeSignalRow): TradeSignalRow => ({
    ...s,
    candleOpenAt: date(s.candleOpenAt) as Date,
    firedAt: date(s.firedAt) as Date,
  });
  return {
    userId: opts.userId,
    async listTraders(o) {
      const rows = await call<Trader[]>('GET', `/v1/machine/traders${o?.enabledOnly ? '?enabledOnly=true' : ''}`);
      return rows.map(toTrader);
    },
    async insertTradeSignal(s: NewTradeSignal) {
      const r = await call<{ inserted: boolean; signal: TradeSignalRow | null }>('POST', '/v1/machine/signals', s);
      return { inserted: r.inserted, signal: r.signal ? toSignal(r.signal) : null };
    },
    async listTradeSignals(o) {
      return (await call<TradeSignalRow[]>('GET', `/v1/machine/signals?limit=${o?.limit ?? 100}`)).map(toSignal);
    },
    async getMachine() {
      const row = await call<MachineRow | null>('GET', '/v1/machine/machine');
      return (
        row &&
        ({
          ...row,
          ...Object.fromEntries(
            ['lastHealthyAt', 'startedAt', 'stoppedAt', 'createdAt', 'updatedAt'].map((k) => [
              k,
              date(row[k as keyof MachineRow]),
            ]),
          ),
        } as MachineRow)
      );
    },
    async getRuntimeCheckpoint() {
      const row = await call<RuntimeCheckpointRow | null>('GET', '/v1/machine/checkpoint');
      return row && { ...row, updatedAt: date(row.updatedAt) as Date };
    },
    async putRuntimeCheckpoint(c) {
      await call<undefined>('PUT', '/v1/machine/checkpoint', c);
    },
    close: async () => undefined,
  };
}
