import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceStore } from '../../store/types';
import { until } from './wait';

export interface Detection {
  /** From the runtime turning sick to the workflow's `restart n/m` record (its own instant). */
  noticedMs: number;
  /** The restart's reason, e.g. `restart 1/2: feed disconnected`. */
  reason: string;
  /** From sick to `recovered` (the sick file is removed as soon as the restart is recorded). */
  recoveredMs: number;
}

/**
 * How long a running machine's sickness goes unnoticed, with whatever is meant to notice it running meanwhile
 * (the health sweep's Schedule): the fake runtime (test/fixtures/fake-runtime.mjs) answers /health 503 while a file
 * named after its user is in its HEALTH_FAIL_DIR. Noticed = the workflow recorded a self-heal; the file then goes,
 * so the restarted runtime is healthy again. Times nothing itself beyond `timeoutMs`: callers report the figure.
 */
export async function timeToNotice(o: {
  store: ServiceStore;
  userId: string;
  failDir: string;
  timeoutMs?: number;
}): Promise<Detection> {
  const file = join(o.failDir, o.userId);
  const sickAt = Date.now();
  writeFileSync(file, ''); // empty: the runtime's reason is "feed disconnected"
  const after = async (test: (reason: string) => boolean) =>
    (await o.store.listMachineEvents(o.userId, { limit: 20 })).find(
      (e) => e.occurredAt.getTime() >= sickAt - 1000 && test(e.reason ?? ''),
    );
  try {
    const restart = await until('the self-heal record', () => after((r) => /^restart \d+\/\d+/.test(r)), {
      timeoutMs: o.timeoutMs ?? 5 * 60_000,
      everyMs: 250,
    });
    rmSync(file, { force: true });
    const recovered = await until('the recovery record', () => after((r) => r === 'recovered'), 60_000);
    return {
      noticedMs: restart.occurredAt.getTime() - sickAt,
      reason: restart.reason ?? '',
      recoveredMs: recovered.occurredAt.getTime() - sickAt,
    };
  } finally {
    rmSync(file, { force: true });
  }
}
