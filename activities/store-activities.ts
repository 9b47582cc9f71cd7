import { log } from '@temporalio/activity';
import type { BillingFacts } from '../common/entitlement';
import {
  billingEventTypes,
  subscriptionTiers,
  type BillingEventType,
  type MachineTransition,
  type ServiceStore,
  type SubscriptionTier,
} from '../store/types';

export interface TransitionInput extends Omit<MachineTransition, 'lastHealthyAt' | 'occurredAt'> {
  /** ISO time: activity arguments travel as JSON. */
  lastHealthyAt?: string;
  /** ISO time, the workflow's clock when the transition happened (not when a retry wrote it). */
  occurredAt?: string;
}

/** A billing event as a workflow signal carries it (an operator may signal one directly). */
export interface SignalledBillingEvent {
  eventId: string;
  type: BillingEventType;
  occurredAt: string;
  tier?: string;
}

export const createStoreActivities = (deps: { store: ServiceStore }) => ({
  /**
   * The user's billing state as stored: what entitlement is decided from. Events given are recorded and
   * applied first, each once by id (the webhook has normally applied them already: then this is a read).
   */
  async syncBilling(input: {
    userId: string;
    events?: SignalledBillingEvent[];
    gracePeriodMs: number;
  }): Promise<BillingFacts> {
    for (const e of input.events ?? []) {
      // A malformed event (an operator's hand-written signal) would fail every retry: it is skipped, and said so.
      const bad = !billingEventTypes.includes(e.type)
        ? `unknown type ${String(e.type)}`
        : Number.isNaN(Date.parse(e.occurredAt))
          ? `occurredAt ${String(e.occurredAt)} is not an instant`
          : e.type === 'tier.changed' && !subscriptionTiers.includes(e.tier as SubscriptionTier)
            ? `unknown tier ${String(e.tier)}`
            : undefined;
      if (bad) {
        log.warn('billing event from a signal skipped', { eventId: e.eventId, problem: bad });
        continue;
      }
      await deps.store.applyBillingEvent({
        id: e.eventId,
        type: e.type,
        userId: input.userId,
        occurredAt: e.occurredAt,
        tier: e.tier as SubscriptionTier | undefined,
        payload: { ...e, source: 'workflow signal' },
        gracePeriodMs: input.gracePeriodMs,
      });
    }
    return deps.store.getBillingFacts(input.userId);
  },

  /** Writes the machine row and its audit event in one transaction (idempotent for a retried activity). */
  async recordTransition(input: TransitionInput): Promise<void> {
    await deps.store.recordMachineTransition({
      ...input,
      lastHealthyAt: input.lastHealthyAt ? new Date(input.lastHealthyAt) : undefined,
      occurredAt: input.occurredAt ? new Date(input.occurredAt) : undefined,
    });
  },
});
