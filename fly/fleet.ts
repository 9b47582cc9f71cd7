import type { FleetMachine } from '../workflows/reconcile-plan';
import type { FlyClient } from './client';
import { FlyApiError, isNotFound } from './errors';
import { isGone, type Machine } from './machines';

/** The machines reconcile's planner takes: live ones with a `user_id` tag (others are nobody's to judge). */
export function toFleetMachines(machines: Machine[]): FleetMachine[] {
  return machines.flatMap((m) => {
    const userId = m.config?.metadata?.user_id;
    if (!userId || !m.id || isGone(m)) return [];
    return [
      {
        id: m.id,
        name: m.name ?? '',
        state: m.state ?? 'unknown',
        userId,
        workflowIdTag: m.config?.metadata?.workflow_id ?? null,
        createdAt: m.created_at ?? null,
      },
    ];
  });
}

/**
 * Stops and force-destroys one machine and waits until Fly says it is gone; "already gone" when it
 * was (idempotent: reconcile and the operator CLI call it, and may call it twice).
 */
export async function destroyMachine(fly: FlyClient, machineId: string): Promise<'destroyed' | 'already gone'> {
  try {
    const m = await fly.getMachine(machineId);
    if (isGone(m)) return 'already gone';
    await fly.stopMachine(machineId).catch((err: unknown) => {
      // Already stopped, or in a state Fly will not stop: the forced delete below handles it.
      if (!(err instanceof FlyApiError) || ![404, 409, 412].includes(err.status)) throw err;
    });
    await fly.deleteMachine(machineId, { force: true });
    await fly.waitMachine(machineId, { state: 'destroyed', timeoutSeconds: 60 });
    return 'destroyed';
  } catch (err) {
    if (isNotFound(err)) return 'already gone';
    throw err;
  }
}
