import type pg from 'pg';
import type { PostgrestError, SupabaseClient } from '@supabase/supabase-js';

/**
 * The Stripe customer ↔ user links and the record of events that change nothing (migration
 * 20261202100000_stripe_customers.sql), for both adapters: store/postgres.ts and store/supabase.ts
 * spread these methods into their service store.
 */

/** `stripe_link_customer`: what linking a customer to a user did. */
export interface StripeCustomerLink {
  /** `linked`: new; `kept`: already this user; `conflict`: already another user (unchanged); `no_user`: no such user. */
  outcome: 'linked' | 'kept' | 'conflict' | 'no_user';
  /** The user the customer is linked to after the call (on a conflict: the one it already had). */
  userId: string | null;
  detail: string;
}

/** An event recorded without effect: its reason goes into `webhook_events.outcome_detail`. */
export interface IgnoredBillingEventInput {
  id: string;
  /** The provider's type (e.g. Stripe's `invoice.paid`). */
  type: string;
  userId: string | null;
  /** ISO instant. */
  occurredAt: string;
  payload: unknown;
  detail: string;
}

export interface IgnoredBillingEventOutcome {
  /** `ignored`: recorded now; `duplicate`: this id was recorded before (applied or not). */
  outcome: 'ignored' | 'duplicate';
  detail: string;
}

export interface StripeCustomerStore {
  /** Links a Stripe customer to a user unless it is linked already; never moves an existing link. */
  linkStripeCustomer(link: { customerId: string; userId: string; eventId: string }): Promise<StripeCustomerLink>;
  /** The user a Stripe customer is linked to, or null. */
  findStripeCustomerUser(customerId: string): Promise<string | null>;
  /** Records an event that changes nothing, once per id (a replay answers `duplicate`). */
  recordIgnoredBillingEvent(e: IgnoredBillingEventInput): Promise<IgnoredBillingEventOutcome>;
}

const ignoredArgs = (e: IgnoredBillingEventInput) => ({
  p_id: e.id,
  p_type: e.type,
  p_user_id: e.userId,
  p_occurred_at: e.occurredAt,
  p_payload: e.payload ?? {},
  p_detail: e.detail,
});

export function postgresStripeCustomers(pool: pg.Pool): StripeCustomerStore {
  const value = async <T>(sql: string, params: unknown[], fn: string): Promise<T> => {
    const { rows } = await pool.query(sql, params);
    if (!rows[0]) throw new Error(`${fn} returned no row`);
    return (rows[0] as { r: T }).r;
  };
  return {
    linkStripeCustomer: ({ customerId, userId, eventId }) =>
      value(
        'select public.stripe_link_customer($1, $2, $3) as r',
        [customerId, userId, eventId],
        'stripe_link_customer',
      ),
    findStripeCustomerUser: (customerId) =>
      value('select public.stripe_customer_user($1) as r', [customerId], 'stripe_customer_user'),
    recordIgnoredBillingEvent: (e) => {
      const a = ignoredArgs(e);
      return value(
        'select public.record_ignored_billing_event($1, $2, $3, $4, $5, $6) as r',
        [a.p_id, a.p_type, a.p_user_id, a.p_occurred_at, JSON.stringify(a.p_payload), a.p_detail],
        'record_ignored_billing_event',
      );
    },
  };
}

/** `check` is the adapter's own (one error type for every Supabase call). */
export function supabaseStripeCustomers(
  db: SupabaseClient,
  check: <T>(operation: string, res: { data: T; error: PostgrestError | null }) => T,
): StripeCustomerStore {
  return {
    async linkStripeCustomer({ customerId, userId, eventId }) {
      return check(
        'stripe_link_customer',
        await db.rpc('stripe_link_customer', { p_customer_id: customerId, p_user_id: userId, p_event_id: eventId }),
      ) as StripeCustomerLink;
    },
    async findStripeCustomerUser(customerId) {
      const userId = check(
        'stripe_customer_user',
        await db.rpc('stripe_customer_user', { p_customer_id: customerId }),
      ) as string | null;
      return userId ?? null;
    },
    async recordIgnoredBillingEvent(e) {
      return check(
        'record_ignored_billing_event',
        await db.rpc('record_ignored_billing_event', ignoredArgs(e)),
      ) as IgnoredBillingEventOutcome;
    },
  };
}
