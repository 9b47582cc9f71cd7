import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import {
  FlyMachineIdSearchAttribute,
  MachineStateSearchAttribute,
  RegionSearchAttribute,
  TierSearchAttribute,
  UserIdSearchAttribute,
} from '../common/search-attributes';
import { transitionCode } from '../common/reason-codes';
import type { CarriedState, MachineStatus } from './contract';

/** The `status` query's answer, from the run's state. */
export function statusOf(s: CarriedState, userId: string, region: string): MachineStatus {
  const billing = s.entitlement;
  return {
    state: s.state,
    userId,
    machineId: s.machineId ?? null,
    region,
    since: s.since,
    lastHealthyAt: s.lastHealthyAt ?? null,
    lastRenewedAt: s.lastRenewedAt ?? null,
    reason: s.reason ?? null,
    tier: billing?.tier ?? null,
    paymentState: billing?.paymentState ?? 'ok',
    paymentOverdueSince: billing?.overdueSince ?? null,
    paymentGraceEndsAt: billing?.graceEndsAt ?? null,
    recent: s.recent,
  };
}

/**
 * Keeps what operators see current: search attributes (an upsert is a history event and a visibility
 * write, so only on change) and the one-line current details of the Temporal UI.
 */
export function createPublisher(userId: string) {
  let published = '';
  return (s: CarriedState, region: string) => {
    const tier = s.entitlement?.tier;
    const attributes = [
      { key: UserIdSearchAttribute, value: userId },
      { key: MachineStateSearchAttribute, value: s.state },
      { key: RegionSearchAttribute, value: region },
      ...(tier ? [{ key: TierSearchAttribute, value: tier }] : []),
      ...(s.machineId ? [{ key: FlyMachineIdSearchAttribute, value: s.machineId }] : []),
    ];
    const current = JSON.stringify(attributes.map((a) => [a.key.name, a.value]));
    if (current !== published) {
      upsertSearchAttributes(attributes);
      published = current;
    }
    const grace = s.entitlement?.graceEndsAt ? ` · payment overdue, grace until ${s.entitlement.graceEndsAt}` : '';
    // The reason code first (common/reason-codes.ts: the timeline's word), then the particulars when there are more.
    const code = transitionCode(s.state, s.reason);
    setCurrentDetails(
      `${s.state} · ${code}${s.reason && s.reason !== code ? ` (${s.reason})` : ''} · machine ${s.machineId ?? 'none'} in ${region}` +
        `${s.lastHealthyAt ? ` · healthy at ${s.lastHealthyAt}` : ''}${grace}`,
    );
  };
}
