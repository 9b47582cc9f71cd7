-- Billing state belongs to the user, not to one workflow run (DESIGN §3, issue 14).
--
-- One row per user in billing_accounts. A billing event is recorded (webhook_events, keyed by the
-- provider's event id) and applied to that row in one transaction by apply_billing_event: applied only
-- when it is newer, as an instant, than what the row already reflects; a duplicate id or an older event
-- changes nothing and says so. Workflows, the API and reconcileFleet read the row (billing_facts); none
-- of them remembers billing in memory.

-- When the app last changed a profile's tier, so the newest of "what the app says" and "what billing
-- said" wins (common/entitlement.ts). Kept by a trigger: the app need not know about it.
alter table public.profiles add column if not exists subscription_tier_changed_at timestamptz not null default now();

create or replace function public.profiles_touch_tier_changed_at() returns trigger
  language plpgsql
  set search_path = public
as $$
begin
  if new.subscription_tier is distinct from old.subscription_tier then
    new.subscription_tier_changed_at := now();
  end if;
  return new;
end
$$;
drop trigger if exists profiles_touch_tier_changed_at on public.profiles;
create trigger profiles_touch_tier_changed_at before update of subscription_tier on public.profiles
  for each row execute function public.profiles_touch_tier_changed_at();

create table if not exists public.billing_accounts (
  user_id uuid primary key references auth.users (id) on delete cascade,
  -- The tier the newest applied tier.changed event set, and that event's occurredAt.
  tier text check (tier in ('anonymous', 'free', 'pro', 'elite')),
  tier_changed_at timestamptz,
  payment_state text not null default 'ok' check (payment_state in ('ok', 'overdue')),
  -- occurredAt of the payment.failed that opened the grace period, and when the grace period ends.
  overdue_since timestamptz,
  grace_ends_at timestamptz,
  -- occurredAt of the newest applied payment event: an older one arriving late changes nothing.
  last_payment_event_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint billing_accounts_grace_when_overdue check ((payment_state = 'overdue') = (grace_ends_at is not null))
);

-- What each event did, for the user's timeline and for whoever asks why an event changed nothing.
alter table public.webhook_events add column if not exists occurred_at timestamptz;
alter table public.webhook_events add column if not exists outcome text
  check (outcome in ('applied', 'ignored'));
alter table public.webhook_events add column if not exists outcome_detail text;
create index if not exists webhook_events_user_idx on public.webhook_events (user_id, received_at desc);

-- Records and applies one billing event, in one transaction. Returns
-- { outcome: 'applied' | 'ignored' | 'duplicate', detail }. Concurrent deliveries of one id: the primary
-- key lets exactly one through; concurrent events of one user: the account row lock orders them.
create or replace function public.apply_billing_event(
  p_id text,
  p_type text,
  p_user_id uuid,
  p_occurred_at timestamptz,
  p_tier text,
  p_payload jsonb,
  p_grace_period interval
) returns jsonb
  language plpgsql
  set search_path = public
as $$
declare
  acct public.billing_accounts;
  previous public.webhook_events;
  result_outcome text;
  result_detail text;
begin
  if p_type not in ('tier.changed', 'payment.failed', 'payment.recovered') then
    raise exception 'unknown billing event type %', p_type using errcode = '22023';
  end if;
  if p_type = 'tier.changed' and p_tier is null then
    raise exception 'tier.changed needs a tier' using errcode = '22023';
  end if;
  insert into public.webhook_events (id, type, user_id, payload, occurred_at)
  values (p_id, p_type, p_user_id, p_payload, p_occurred_at)
  on conflict (id) do nothing;
  if not found then
    select * into previous from public.webhook_events where id = p_id;
    return jsonb_build_object(
      'outcome', 'duplicate',
      'detail', format('event %s was received at %s (%s%s); nothing changed', p_id,
        to_char(previous.received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        coalesce(previous.outcome, 'not applied'), coalesce(': ' || previous.outcome_detail, '')));
  end if;

  if not exists (select 1 from auth.users where id = p_user_id) then
    result_outcome := 'ignored';
    result_detail := 'no such user';
  else
    insert into public.billing_accounts (user_id) values (p_user_id) on conflict (user_id) do nothing;
    select * into acct from public.billing_accounts where user_id = p_user_id for update;

    if p_type = 'tier.changed' then
      if acct.tier_changed_at is not null and p_occurred_at <= acct.tier_changed_at then
        result_outcome := 'ignored';
        result_detail := format('older than the tier change already applied (%s at %s)', acct.tier,
          to_char(acct.tier_changed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
      else
        update public.billing_accounts set tier = p_tier, tier_changed_at = p_occurred_at, updated_at = now()
          where user_id = p_user_id;
        result_outcome := 'applied';
        result_detail := format('tier %s', p_tier);
      end if;
    elsif acct.last_payment_event_at is not null and p_occurred_at <= acct.last_payment_event_at then
      result_outcome := 'ignored';
      result_detail := format('older than the payment event already applied (at %s)',
        to_char(acct.last_payment_event_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
    elsif p_type = 'payment.failed' then
      result_outcome := 'applied';
      if acct.payment_state = 'overdue' then
        -- A later failure does not extend the grace period the first one opened.
        update public.billing_accounts set last_payment_event_at = p_occurred_at, updated_at = now()
          where user_id = p_user_id;
        result_detail := format('payment still overdue; grace period unchanged, ends %s',
          to_char(acct.grace_ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
      else
        update public.billing_accounts set payment_state = 'overdue', overdue_since = p_occurred_at,
            grace_ends_at = p_occurred_at + p_grace_period, last_payment_event_at = p_occurred_at, updated_at = now()
          where user_id = p_user_id;
        result_detail := format('payment overdue; grace period ends %s',
          to_char((p_occurred_at + p_grace_period) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
      end if;
    else
      update public.billing_accounts set payment_state = 'ok', overdue_since = null, grace_ends_at = null,
          last_payment_event_at = p_occurred_at, updated_at = now()
        where user_id = p_user_id;
      result_outcome := 'applied';
      result_detail := case when acct.payment_state = 'overdue' then 'payment recovered; grace period closed'
                            else 'payment recovered; nothing was overdue' end;
    end if;
  end if;

  update public.webhook_events set outcome = result_outcome, outcome_detail = result_detail where id = p_id;
  return jsonb_build_object('outcome', result_outcome, 'detail', result_detail);
end
$$;

-- Everything entitlement needs about one user, in one round trip: the app's tier (and when it changed)
-- and the billing account. Null when the user has no profile.
create or replace function public.billing_facts(p_user_id uuid) returns jsonb
  language sql
  stable
  set search_path = public
as $$
  select jsonb_build_object(
    'profileTier', p.subscription_tier,
    'profileTierChangedAt', p.subscription_tier_changed_at,
    'account', case when b.user_id is null then null else jsonb_build_object(
      'tier', b.tier,
      'tierChangedAt', b.tier_changed_at,
      'paymentState', b.payment_state,
      'overdueSince', b.overdue_since,
      'graceEndsAt', b.grace_ends_at,
      'lastPaymentEventAt', b.last_payment_event_at,
      'updatedAt', b.updated_at) end)
  from (select p_user_id as id) u
  left join public.profiles p on p.id = u.id
  left join public.billing_accounts b on b.user_id = u.id
$$;

-- The same for many users at once (reconcileFleet checks every machine's user in one query).
create or replace function public.billing_facts_many(p_user_ids uuid[]) returns table (user_id uuid, facts jsonb)
  language sql
  stable
  set search_path = public
as $$
  select u.id, public.billing_facts(u.id) from unnest(p_user_ids) as u(id)
$$;

alter table public.billing_accounts enable row level security;
drop policy if exists billing_accounts_select_own on public.billing_accounts;
create policy billing_accounts_select_own on public.billing_accounts for select to authenticated
  using (user_id = auth.uid());

revoke all on public.billing_accounts from anon, authenticated;
grant select on public.billing_accounts to authenticated;
grant all on public.billing_accounts to service_role;
revoke execute on function public.apply_billing_event from public, anon, authenticated;
revoke execute on function public.billing_facts from public, anon, authenticated;
revoke execute on function public.billing_facts_many from public, anon, authenticated;
revoke execute on function public.profiles_touch_tier_changed_at from public, anon, authenticated;
grant execute on function public.apply_billing_event to service_role;
grant execute on function public.billing_facts to service_role;
grant execute on function public.billing_facts_many to service_role;
