-- Stripe natively (issue 19, item 3): which user a Stripe customer is, and a way to record a Stripe
-- event that changes nothing.
--
-- A subscription (or its customer) carries `metadata.user_id`; invoices usually do not. The first
-- event that names a customer's user links the two here, and later events of that customer (its
-- invoices) find the user through the link. A link is never moved by an event: a customer whose
-- metadata later names another user is a conflict the event reports, not a silent reassignment (an
-- operator deletes the row to re-link). Only the service role touches any of it: RLS on with no
-- policies, nothing granted to anon or authenticated.

create table if not exists public.stripe_customers (
  customer_id text primary key check (length(customer_id) between 1 and 255),
  user_id uuid not null references auth.users (id) on delete cascade,
  -- The event that made the link (`stripe:evt_…`), for whoever asks where it came from.
  linked_by_event text,
  created_at timestamptz not null default now()
);
create index if not exists stripe_customers_user_idx on public.stripe_customers (user_id);

-- Links a customer to a user unless it is linked already. Returns { outcome, userId, detail }:
-- 'linked' (new), 'kept' (the same user already), 'conflict' (another user already: nothing changes),
-- 'no_user' (no such user: nothing stored, the billing event then says so too).
create or replace function public.stripe_link_customer(p_customer_id text, p_user_id uuid, p_event_id text)
  returns jsonb
  language plpgsql
  set search_path = public
as $$
declare
  existing uuid;
begin
  if p_customer_id is null or p_customer_id = '' or p_user_id is null then
    raise exception 'stripe_link_customer: a customer id and a user id are required' using errcode = '22023';
  end if;
  if not exists (select 1 from auth.users where id = p_user_id) then
    return jsonb_build_object('outcome', 'no_user', 'userId', p_user_id, 'detail', 'no such user');
  end if;
  insert into public.stripe_customers (customer_id, user_id, linked_by_event)
  values (p_customer_id, p_user_id, p_event_id)
  on conflict (customer_id) do nothing;
  if found then
    return jsonb_build_object('outcome', 'linked', 'userId', p_user_id,
      'detail', format('customer %s linked to user %s', p_customer_id, p_user_id));
  end if;
  -- A concurrent insert of the same customer has committed by now (ON CONFLICT waited for it).
  select user_id into existing from public.stripe_customers where customer_id = p_customer_id;
  if existing = p_user_id then
    return jsonb_build_object('outcome', 'kept', 'userId', p_user_id,
      'detail', format('customer %s is user %s', p_customer_id, p_user_id));
  end if;
  return jsonb_build_object('outcome', 'conflict', 'userId', existing,
    'detail', format('customer %s is linked to user %s, but the event names user %s; nothing changed',
      p_customer_id, coalesce(existing::text, '(none)'), p_user_id));
end
$$;

-- The user a customer is linked to, or null.
create or replace function public.stripe_customer_user(p_customer_id text) returns uuid
  language sql
  stable
  set search_path = public
as $$
  select user_id from public.stripe_customers where customer_id = p_customer_id
$$;

-- Records an event that changes nothing (an unknown customer or price, a user id that is not one),
-- once per id, with the reason in outcome_detail: a replay is a duplicate like any other event, and
-- whoever asks why Stripe's event did nothing finds the answer. Same answer shape as apply_billing_event.
create or replace function public.record_ignored_billing_event(
  p_id text,
  p_type text,
  p_user_id uuid,
  p_occurred_at timestamptz,
  p_payload jsonb,
  p_detail text
) returns jsonb
  language plpgsql
  set search_path = public
as $$
declare
  previous public.webhook_events;
begin
  if p_id is null or p_type is null or p_detail is null then
    raise exception 'record_ignored_billing_event: an id, a type and a detail are required' using errcode = '22023';
  end if;
  insert into public.webhook_events (id, type, user_id, payload, occurred_at, outcome, outcome_detail)
  values (p_id, p_type, p_user_id, coalesce(p_payload, '{}'::jsonb), p_occurred_at, 'ignored', p_detail)
  on conflict (id) do nothing;
  if not found then
    select * into previous from public.webhook_events where id = p_id;
    return jsonb_build_object(
      'outcome', 'duplicate',
      'detail', format('event %s was received at %s (%s%s); nothing changed', p_id,
        to_char(previous.received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        coalesce(previous.outcome, 'not applied'), coalesce(': ' || previous.outcome_detail, '')));
  end if;
  return jsonb_build_object('outcome', 'ignored', 'detail', p_detail);
end
$$;

alter table public.stripe_customers enable row level security;
revoke all on public.stripe_customers from anon, authenticated;
grant all on public.stripe_customers to service_role;
revoke execute on function public.stripe_link_customer from public, anon, authenticated;
revoke execute on function public.stripe_customer_user from public, anon, authenticated;
revoke execute on function public.record_ignored_billing_event from public, anon, authenticated;
grant execute on function public.stripe_link_customer to service_role;
grant execute on function public.stripe_customer_user to service_role;
grant execute on function public.record_ignored_billing_event to service_role;
