import type { MachineTransition, ServiceStore } from '../store/types';

export interface TransitionInput extends Omit<MachineTransition, 'lastHealthyAt'> {
  /** ISO time: activity arguments travel as JSON. */
  lastHealthyAt?: string;
}

export const createStoreActivities = (deps: { store: ServiceStore }) => ({
  /** The entitlement check: only the elite tier gets a machine. */
  async getEntitlement(input: { userId: string }): Promise<{ tier: string | null; entitled: boolean }> {
    const tier = await deps.store.getSubscriptionTier(input.userId);
    return { tier, entitled: tier === 'elite' };
  },

  /** Writes the machine row and its audit event in one transaction (idempotent for a retried activity). */
  async recordTransition(input: TransitionInput): Promise<void> {
    await deps.store.recordMachineTransition({
      ...input,
      lastHealthyAt: input.lastHealthyAt ? new Date(input.lastHealthyAt) : undefined,
    });
  },
});

export type StoreActivities = ReturnType<typeof createStoreActivities>;
