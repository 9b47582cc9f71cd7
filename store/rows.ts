import type { BillingFacts } from '../common/entitlement';
import type { MachineState } from '../common/machine-states';
import { transitionCode } from '../common/reason-codes';
import type { BillingEventInput, MachineEvent, MachineRow, MachineTransition, Trader, TradeSignalRow } from './types';

/*
 * Rows as both adapters read them (snake_case columns → the store's types) and the arguments of the
 * SQL functions both call: shared by Postgres (pg) and Supabase (PostgREST), importing neither.
 */

export type Row = Record<string, unknown>;

const date = (v: unknown) => (v == null ? null : new Date(v as string | Date));

export const toMachine = (r: Row): MachineRow => ({
  id: r.id as string,
  userId: r.user_id as string,
  machineId: (r.machine_id as string | null) ?? null,
  flyMachineName: (r.fly_machine_name as string | null) ?? null,
  workflowId: (r.workflow_id as string | null) ?? null,
  region: r.region as string,
  cpuPriority: r.cpu_priority as MachineRow['cpuPriority'],
  status: r.status as MachineState,
  errorMessage: (r.error_message as string | null) ?? null,
  lastHealthyAt: date(r.last_healthy_at),
  startedAt: date(r.started_at),
  stoppedAt: date(r.stopped_at),
  createdAt: date(r.created_at) as Date,
  updatedAt: date(r.updated_at) as Date,
});

export const toMachineEvent = (r: Row): MachineEvent => ({
  id: Number(r.id),
  userId: r.user_id as string,
  workflowId: (r.workflow_id as string | null) ?? null,
  flyMachineId: (r.fly_machine_id as string | null) ?? null,
  fromStatus: (r.from_status as MachineState | null) ?? null,
  toStatus: r.to_status as MachineState,
  reason: (r.reason as string | null) ?? null,
  details: (r.details as Record<string, unknown>) ?? {},
  occurredAt: date(r.occurred_at) as Date,
});

export const toTrader = (r: Row): Trader => ({
  id: r.id as string,
  userId: r.user_id as string,
  name: r.name as string,
  definition: r.definition,
  enabled: r.enabled as boolean,
  updatedAt: date(r.updated_at) as Date,
});

export const toSignal = (r: Row): TradeSignalRow => ({
  id: r.id as string,
  userId: r.user_id as string,
  traderId: r.trader_id as string,
  symbol: r.symbol as string,
  interval: r.interval as string,
  candleOpenAt: date(r.candle_open_at) as Date,
  firedAt: date(r.fired_at) as Date,
  payload: (r.payload as Record<string, unknown>) ?? {},
});

/** Arguments of `record_machine_transition`, shared with the Supabase adapter's rpc call. */
export const transitionArgs = (t: MachineTransition) => ({
  p_user_id: t.userId,
  p_status: t.status,
  p_reason: t.reason ?? null,
  p_workflow_id: t.workflowId ?? null,
  p_machine_id: t.machineId ?? null,
  p_machine_name: t.machineName ?? null,
  p_region: t.region ?? null,
  p_cpu_priority: t.cpuPriority ?? null,
  p_error_message: t.errorMessage ?? null,
  p_last_healthy_at: t.lastHealthyAt?.toISOString() ?? null,
  p_details: t.details ?? {},
  p_transition_id: t.transitionId ?? null,
  // Every transition carries a reason code: the writer's, else the one its words stand for.
  p_reason_code: t.code ?? transitionCode(t.status, t.reason),
  p_occurred_at: t.occurredAt?.toISOString() ?? null,
});

/** Arguments of `apply_billing_event`, shared with the Supabase adapter's rpc call. */
export const billingEventArgs = (e: BillingEventInput) => ({
  p_id: e.id,
  p_type: e.type,
  p_user_id: e.userId,
  p_occurred_at: e.occurredAt,
  p_tier: e.tier ?? null,
  p_payload: e.payload ?? {},
  p_grace_period: `${Math.round(e.gracePeriodMs)} milliseconds`,
});

const isoOrNull = (v: unknown) => (v == null ? null : new Date(v as string).toISOString());

/** `billing_facts()`'s JSON, instants normalised to ISO (Postgres writes microseconds and `+00:00`). */
export function toBillingFacts(json: unknown): BillingFacts {
  const j = (json ?? {}) as Record<string, unknown>;
  const a = j.account as Record<string, unknown> | null | undefined;
  return {
    profileTier: (j.profileTier as string | null | undefined) ?? null,
    profileTierChangedAt: isoOrNull(j.profileTierChangedAt),
    account: a
      ? {
          tier: (a.tier as string | null) ?? null,
          tierChangedAt: isoOrNull(a.tierChangedAt),
          paymentState: a.paymentState === 'overdue' ? 'overdue' : 'ok',
          overdueSince: isoOrNull(a.overdueSince),
          graceEndsAt: isoOrNull(a.graceEndsAt),
          lastPaymentEventAt: isoOrNull(a.lastPaymentEventAt),
        }
      : null,
  };
}
