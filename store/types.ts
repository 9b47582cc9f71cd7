import type { BillingFacts } from '../common/entitlement';
import type { ReasonCode, TimelineKind } from '../common/reason-codes';
import type { UptimeRecord } from '../common/uptime-ledger';

import type { MachineState } from '../common/machine-states';
import type { StripeCustomerStore } from './stripe-customers';

/** `cloud_machines.status` holds a MachineState (common/machine-states.ts; extend only by migration). */

export const subscriptionTiers = ['anonymous', 'free', 'pro', 'elite'] as const;
export type SubscriptionTier = (typeof subscriptionTiers)[number];

export interface MachineRow {
  id: string;
  userId: string;
  machineId: string | null;
  flyMachineName: string | null;
  workflowId: string | null;
  region: string;
  cpuPriority: 'low' | 'normal' | 'high';
  status: MachineState;
  errorMessage: string | null;
  lastHealthyAt: Date | null;
  startedAt: Date | null;
  stoppedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface MachineTransition {
  userId: string;
  status: MachineState;
  reason?: string;
  workflowId?: string;
  machineId?: string;
  machineName?: string;
  region?: string;
  cpuPriority?: 'low' | 'normal' | 'high';
  errorMessage?: string;
  lastHealthyAt?: Date;
  details?: Record<string, unknown>;
  /** Unique per transition: a retried write of the same transition is a no-op. */
  transitionId?: string;
  /** common/reason-codes.ts; unset, derived from `status` and `reason`. */
  code?: ReasonCode;
  /** When it happened (the workflow's clock); unset, the database's now. */
  occurredAt?: Date;
}

export interface MachineEvent {
  id: number;
  userId: string;
  workflowId: string | null;
  flyMachineId: string | null;
  fromStatus: MachineState | null;
  toStatus: MachineState;
  reason: string | null;
  details: Record<string, unknown>;
  occurredAt: Date;
}

export interface WebhookEventRecord {
  id: string;
  type: string;
  userId: string | null;
  payload: unknown;
}

export const billingEventTypes = ['tier.changed', 'payment.failed', 'payment.recovered'] as const;
export type BillingEventType = (typeof billingEventTypes)[number];

/** A billing event to record and apply (`apply_billing_event`): the provider's id, type and instant. */
export interface BillingEventInput {
  id: string;
  type: BillingEventType;
  userId: string;
  /** ISO instant, any offset or precision: compared as an instant by Postgres. */
  occurredAt: string;
  /** For `tier.changed`. */
  tier?: SubscriptionTier;
  payload: unknown;
  /** The grace period a `payment.failed` opens, in ms (policy of the caller: MACHINE_PAYMENT_GRACE_PERIOD). */
  gracePeriodMs: number;
}

/** `applied`: the account changed (or was confirmed); `ignored`: older than the account, or unknown user; `duplicate`: id seen before. */
export interface BillingEventOutcome {
  outcome: 'applied' | 'ignored' | 'duplicate';
  detail: string;
}

/** One hit on a shared rate-limit counter (`api_rate_hit`): within the budget or not, and when the window ends. */
export interface RateHit {
  allowed: boolean;
  /** Hits left in this window (0 once over). */
  remaining: number;
  resetAt: Date;
}

/** `stream_lease_acquire`: whether the lease was taken, and how many live leases the user holds now. */
export interface StreamLeaseOutcome {
  acquired: boolean;
  active: number;
}

export interface Trader {
  id: string;
  userId: string;
  name: string;
  /** Validated by the machine runtime's trader schema, not here: the store keeps it as JSON. */
  definition: unknown;
  enabled: boolean;
  updatedAt: Date;
}

/** A trader as its user writes it; `definition` is validated by the caller (the API) before it gets here. */
export interface NewTrader {
  name: string;
  definition: unknown;
  enabled?: boolean;
}
export type TraderPatch = Partial<NewTrader>;

/** `createTrader` refused: the user already has `max` traders. */
export interface TraderLimitReached {
  refused: 'limit';
  max: number;
}

/**
 * A user's own traders, read and written with that user's credentials (RLS: another user's trader
 * is invisible, so it reads as null / false). The API's trader routes use it, never a machine.
 */
export interface UserTraderStore {
  readonly userId: string;
  listTraders(opts?: { enabledOnly?: boolean }): Promise<Trader[]>;
  getTrader(id: string): Promise<Trader | null>;
  /** Inserts unless the user already has `maxTraders` (counted in the same transaction where the store can). */
  createTrader(t: NewTrader, opts: { maxTraders: number }): Promise<Trader | TraderLimitReached>;
  /** Changes the given fields and bumps `updatedAt` (the runtime reloads a trader whose `updatedAt` moved); null if not found. */
  updateTrader(id: string, patch: TraderPatch): Promise<Trader | null>;
  /** True when it was there (its signals go with it). */
  deleteTrader(id: string): Promise<boolean>;
  /** The user's signals, newest first (the page's signal list and chart markers). */
  listTradeSignals(opts?: TradeSignalQuery): Promise<TradeSignalRow[]>;
}

export interface NewTradeSignal {
  traderId: string;
  symbol: string;
  interval: string;
  /** Open time of the candle that fired; the dedupe key with trader, symbol and interval. */
  candleOpenAt: Date;
  firedAt?: Date;
  payload: Record<string, unknown>;
}

export interface TradeSignalRow extends Required<NewTradeSignal> {
  id: string;
  userId: string;
}

/**
 * Newest first (fired_at, then id, both descending: a total order, so pages never skip a tie);
 * `before` pages back from a row; `symbol` / `interval` narrow to one stream.
 */
export interface TradeSignalQuery {
  limit?: number;
  before?: { firedAt: Date; id: string };
  symbol?: string;
  interval?: string;
}

/**
 * Where a user's machine runtime stood, so a restarted machine neither loses nor repeats a signal
 * (`runtime_checkpoints`, one row per user; machine-runtime/checkpoint.ts says how it is used).
 */
export interface RuntimeCheckpoint {
  /** The Fly machine that wrote it (`FLY_MACHINE_ID`); null off Fly. */
  machineId: string | null;
  /** Per stream (`SYMBOL|interval`): open time (ms) of the last candle evaluated with all its signals stored. */
  streams: Record<string, number>;
  /** The traders running then: id → `updatedAt` (ms). */
  traders: Record<string, number>;
}

export interface RuntimeCheckpointRow extends RuntimeCheckpoint {
  userId: string;
  /** When it was last written (the database's clock). */
  updatedAt: Date;
}

/**
 * What a user's own credentials may do (RLS enforced by the database): the machine runtime and
 * anything acting for one user use this, never the service store.
 */
export interface UserStore {
  readonly userId: string;
  listTraders(opts?: { enabledOnly?: boolean }): Promise<Trader[]>;
  /** Inserts once per (trader, symbol, interval, candle); `inserted: false` for a repeat. */
  insertTradeSignal(signal: NewTradeSignal): Promise<{ inserted: boolean; signal: TradeSignalRow | null }>;
  listTradeSignals(opts?: TradeSignalQuery): Promise<TradeSignalRow[]>;
  getMachine(): Promise<MachineRow | null>;
  /** The user's runtime checkpoint, null before the first write. */
  getRuntimeCheckpoint(): Promise<RuntimeCheckpointRow | null>;
  /** Replaces the user's runtime checkpoint (one row per user). */
  putRuntimeCheckpoint(c: RuntimeCheckpoint): Promise<void>;
}

/** One entry of a user's timeline (store/timeline.ts): a transition or a billing event, in one shape. */
export interface MachineTimelineEntry {
  /** ISO instant. */
  at: string;
  kind: TimelineKind;
  code: ReasonCode;
  /** One sentence for a person. */
  text: string;
  details: Record<string, unknown>;
}
/** Newest first; `next` is the cursor of the next (older) page, null on the last. */
export interface TimelinePage {
  entries: MachineTimelineEntry[];
  next: string | null;
}
export interface TimelineQuery {
  limit?: number;
  /** A previous page's `next`. */
  before?: string;
}
/** The instants uptime records are read for (`to` excluded); the store adds what the state at `from` needs. */
export interface UptimeRange {
  from: Date;
  to: Date;
}

/** A user's own history, read under RLS (the API's timeline and uptime routes). */
export interface UserHistoryStore {
  timeline(q?: TimelineQuery): Promise<TimelinePage>;
  uptimeRecords(range: UptimeRange): Promise<UptimeRecord[]>;
}

/**
 * The service side (worker, API): sees every row. Holds the service credentials, never given to a machine.
 * The Stripe customer links live in store/stripe-customers.ts.
 */
export interface ServiceStore extends StripeCustomerStore {
  getSubscriptionTier(userId: string): Promise<SubscriptionTier | null>;
  /** Upserts the machine row and appends a `machine_events` row, in one transaction. */
  recordMachineTransition(t: MachineTransition): Promise<MachineRow>;
  getMachine(userId: string): Promise<MachineRow | null>;
  listMachines(opts?: { statuses?: MachineState[] }): Promise<MachineRow[]>;
  listMachineEvents(userId: string, opts?: { limit?: number }): Promise<MachineEvent[]>;
  /** True the first time an event id is seen, false for a replay (audit only: billing events use applyBillingEvent). */
  recordWebhookEvent(e: WebhookEventRecord): Promise<boolean>;
  /** Records a billing event and applies it to the user's billing account, in one transaction; once per id. */
  applyBillingEvent(e: BillingEventInput): Promise<BillingEventOutcome>;
  /** The app's tier and the billing account: everything `entitlement()` needs. */
  getBillingFacts(userId: string): Promise<BillingFacts>;
  /** The same for many users in one round trip, keyed by user id. */
  listBillingFacts(userIds: string[]): Promise<Map<string, BillingFacts>>;
  /** Counts one hit on `key` in a fixed window of `windowMs` (opened by its first hit), atomically for every replica. */
  rateHit(hit: { key: string; windowMs: number; max: number }): Promise<RateHit>;
  /** Takes a lease for one more open stream of the user, if fewer than `max` live ones exist; it lives `ttlMs`. */
  acquireStreamLease(lease: {
    userId: string;
    leaseId: string;
    max: number;
    ttlMs: number;
  }): Promise<StreamLeaseOutcome>;
  /** Extends a live lease to `ttlMs` from now; false when it has expired or is gone. */
  renewStreamLease(lease: { leaseId: string; ttlMs: number }): Promise<boolean>;
  /** Gives a lease back (idempotent); true if it was still there. */
  releaseStreamLease(leaseId: string): Promise<boolean>;
  /** One user's timeline (the operator's view: `ops timeline`). */
  timeline(userId: string, q?: TimelineQuery): Promise<TimelinePage>;
  /** The uptime records of the given users (all with a transition when omitted), by user, each oldest first. */
  uptimeRecords(range: UptimeRange & { userIds?: string[] }): Promise<Map<string, UptimeRecord[]>>;
  close(): Promise<void>;
}
