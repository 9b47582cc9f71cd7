import { randomUUID } from 'node:crypto';
import type {
  MachineRow,
  NewTradeSignal,
  RuntimeCheckpoint,
  RuntimeCheckpointRow,
  TradeSignalRow,
  Trader,
  UserStore,
} from '../../store/types';

/**
 * In-memory UserStore for feed and engine tests only (the real Postgres/Supabase stores are tested
 * in store/). Same idempotency rule as the real one; `failing` simulates an unreachable database.
 */
export class MemoryUserStore implements UserStore {
  traders: Trader[] = [];
  signals: TradeSignalRow[] = [];
  checkpoint: RuntimeCheckpointRow | null = null;
  failing = false;
  calls = { listTraders: 0, insertTradeSignal: 0, putRuntimeCheckpoint: 0 };

  constructor(readonly userId: string = randomUUID()) {}

  addTrader(name: string, definition: unknown, opts: { id?: string; enabled?: boolean } = {}): Trader {
    const t: Trader = {
      id: opts.id ?? randomUUID(),
      userId: this.userId,
      name,
      definition,
      enabled: opts.enabled ?? true,
      updatedAt: new Date(),
    };
    this.traders.push(t);
    return t;
  }

  async listTraders(opts?: { enabledOnly?: boolean }): Promise<Trader[]> {
    this.calls.listTraders++;
    if (this.failing) throw new Error('store unreachable (test)');
    return this.traders.filter((t) => !opts?.enabledOnly || t.enabled).map((t) => ({ ...t }));
  }

  async insertTradeSignal(s: NewTradeSignal): Promise<{ inserted: boolean; signal: TradeSignalRow | null }> {
    this.calls.insertTradeSignal++;
    if (this.failing) throw new Error('store unreachable (test)');
    const dup = this.signals.find(
      (r) =>
        r.traderId === s.traderId &&
        r.symbol === s.symbol &&
        r.interval === s.interval &&
        r.candleOpenAt.getTime() === s.candleOpenAt.getTime(),
    );
    if (dup) return { inserted: false, signal: null };
    const row: TradeSignalRow = {
      id: randomUUID(),
      userId: this.userId,
      firedAt: s.firedAt ?? new Date(),
      ...s,
    } as TradeSignalRow;
    this.signals.push(row);
    return { inserted: true, signal: row };
  }

  async listTradeSignals(opts?: { limit?: number }): Promise<TradeSignalRow[]> {
    return this.signals.slice(-(opts?.limit ?? 100)).reverse();
  }

  async getMachine(): Promise<MachineRow | null> {
    return null;
  }

  async getRuntimeCheckpoint(): Promise<RuntimeCheckpointRow | null> {
    if (this.failing) throw new Error('store unreachable (test)');
    return this.checkpoint && structuredClone(this.checkpoint);
  }

  async putRuntimeCheckpoint(c: RuntimeCheckpoint): Promise<void> {
    this.calls.putRuntimeCheckpoint++;
    if (this.failing) throw new Error('store unreachable (test)');
    this.checkpoint = { ...structuredClone(c), userId: this.userId, updatedAt: new Date() };
  }
}
