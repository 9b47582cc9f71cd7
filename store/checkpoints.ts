import type { RuntimeCheckpoint, RuntimeCheckpointRow } from './types';

/*
 * `runtime_checkpoints` rows as both adapters read and write them (snake_case columns ↔ the store's
 * types), importing neither. What a checkpoint means is machine-runtime/checkpoint.ts's business.
 */

type Row = Record<string, unknown>;

export const toRuntimeCheckpoint = (r: Row): RuntimeCheckpointRow => ({
  userId: r.user_id as string,
  machineId: (r.machine_id as string | null) ?? null,
  streams: (r.streams as Record<string, number>) ?? {},
  traders: (r.traders as Record<string, number>) ?? {},
  updatedAt: new Date(r.updated_at as string | Date),
});

/** The columns of an upsert (updated_at is the database's: a trigger sets it). */
export const runtimeCheckpointColumns = (userId: string, c: RuntimeCheckpoint) => ({
  user_id: userId,
  machine_id: c.machineId,
  streams: c.streams,
  traders: c.traders,
});
