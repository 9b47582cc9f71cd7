-- Cloud Execution schema (DESIGN §5). Runs unchanged on Supabase and, with supabase/local/auth-shim.sql,
-- on plain Postgres and PGlite, so the same RLS is tested for real.

-- Subscription tier of each user. Owned by the screener app; created here only where it does not exist
-- yet (local mode, a fresh project). Where the app already has it, its row-level security, policies and
-- grants stay exactly as the app set them: nothing below touches them (see "profiles" near the end).
do $$
begin
  if to_regclass('public.profiles') is null then
    create table public.profiles (
      id uuid primary key references auth.users (id) on delete cascade,
      subscription_tier text not null default 'free' check (subscription_tier in ('anonymous', 'free', 'pro', 'elite')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    -- Remembered for this migration only: the table's security below is ours to state.
    perform set_config('cloud_execution.created_profiles', 'on', false);
  end if;
end
$$;

-- The original design's table, with the columns the workflow needs added.
create table if not exists public.cloud_machines (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null unique references auth.users (id) on delete cascade,
  machine_id text,
  region text not null default 'sin',
  status text not null default 'provisioning'
    check (status in ('provisioning', 'starting', 'running', 'stopping', 'stopped', 'error')),
  cpu_priority text not null default 'normal' check (cpu_priority in ('low', 'normal', 'high')),
  websocket_url text,
  error_message text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  stopped_at timestamptz,
  last_health_check timestamptz,
  fly_machine_name text,
  workflow_id text,
  last_healthy_at timestamptz,
  updated_at timestamptz not null default now()
);
create index if not exists cloud_machines_status_idx on public.cloud_machines (status);
create index if not exists cloud_machines_machine_id_idx on public.cloud_machines (machine_id);

create table if not exists public.traders (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  definition jsonb not null,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists traders_user_id_idx on public.traders (user_id);

create table if not exists public.signals (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  trader_id uuid not null references public.traders (id) on delete cascade,
  symbol text not null,
  interval text not null,
  -- Open time of the candle that fired: with trader, symbol and interval it makes a firing unique,
  -- so a reconnect or a restart of the machine never stores the same signal twice.
  candle_open_at timestamptz not null,
  fired_at timestamptz not null default now(),
  payload jsonb not null default '{}'::jsonb,
  unique (trader_id, symbol, interval, candle_open_at)
);
create index if not exists signals_user_fired_idx on public.signals (user_id, fired_at desc);

-- Audit trail: every transition of a machine, with its reason.
create table if not exists public.machine_events (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  workflow_id text,
  fly_machine_id text,
  from_status text,
  to_status text not null,
  reason text,
  details jsonb not null default '{}'::jsonb,
  -- Set by the workflow so a retried activity does not write the same transition twice.
  transition_id text unique,
  occurred_at timestamptz not null default now()
);
create index if not exists machine_events_user_idx on public.machine_events (user_id, occurred_at desc);

-- Billing webhook events, recorded once each (the id is the billing system's event id).
create table if not exists public.webhook_events (
  id text primary key,
  type text not null,
  user_id uuid,
  payload jsonb not null,
  received_at timestamptz not null default now()
);

-- One transaction for "upsert the machine row and append its audit event", callable from Postgres
-- and through PostgREST (rpc) alike. Only the service role may call it.
create or replace function public.record_machine_transition(
  p_user_id uuid,
  p_status text,
  p_reason text default null,
  p_workflow_id text default null,
  p_machine_id text default null,
  p_machine_name text default null,
  p_region text default null,
  p_cpu_priority text default null,
  p_error_message text default null,
  p_last_healthy_at timestamptz default null,
  p_details jsonb default '{}'::jsonb,
  p_transition_id text default null
) returns public.cloud_machines
  language plpgsql
  set search_path = public
as $$
declare
  previous text;
  result public.cloud_machines;
begin
  -- A retry of a transition already recorded changes nothing.
  if p_transition_id is not null and exists (select 1 from public.machine_events where transition_id = p_transition_id) then
    select * into result from public.cloud_machines where user_id = p_user_id;
    return result;
  end if;
  select status into previous from public.cloud_machines where user_id = p_user_id for update;
  insert into public.cloud_machines as m (
    user_id, status, workflow_id, machine_id, fly_machine_name, region, cpu_priority, error_message,
    last_healthy_at, last_health_check, started_at, stopped_at, updated_at)
  values (
    p_user_id, p_status, p_workflow_id, p_machine_id, p_machine_name, coalesce(p_region, 'sin'),
    coalesce(p_cpu_priority, 'normal'), p_error_message, p_last_healthy_at, p_last_healthy_at,
    case when p_status = 'running' then now() end, case when p_status = 'stopped' then now() end, now())
  on conflict (user_id) do update set
    status = excluded.status,
    workflow_id = coalesce(excluded.workflow_id, m.workflow_id),
    machine_id = coalesce(p_machine_id, m.machine_id),
    fly_machine_name = coalesce(p_machine_name, m.fly_machine_name),
    region = coalesce(p_region, m.region),
    cpu_priority = coalesce(p_cpu_priority, m.cpu_priority),
    error_message = case when p_status = 'error' then p_error_message else null end,
    last_healthy_at = coalesce(p_last_healthy_at, m.last_healthy_at),
    last_health_check = coalesce(p_last_healthy_at, m.last_health_check),
    started_at = case when p_status = 'running' and m.status <> 'running' then now() else m.started_at end,
    stopped_at = case when p_status = 'stopped' and m.status <> 'stopped' then now() else m.stopped_at end,
    updated_at = now()
  returning * into result;
  -- A renewal that only refreshes last_healthy_at is not a transition worth auditing.
  if previous is distinct from p_status or p_reason is not null then
    insert into public.machine_events (user_id, workflow_id, fly_machine_id, from_status, to_status, reason, details, transition_id)
    values (p_user_id, result.workflow_id, result.machine_id, previous, p_status, p_reason, coalesce(p_details, '{}'::jsonb), p_transition_id);
  end if;
  return result;
end
$$;

-- Records a billing event once; true the first time, false for a replay.
create or replace function public.record_webhook_event(p_id text, p_type text, p_user_id uuid, p_payload jsonb)
  returns boolean
  language sql
  set search_path = public
as $$
  with inserted as (
    insert into public.webhook_events (id, type, user_id, payload) values (p_id, p_type, p_user_id, p_payload)
    on conflict (id) do nothing
    returning 1
  )
  select exists (select 1 from inserted)
$$;

-- Row-level security: a user sees only their own rows; the service role (bypassrls) sees all.
alter table public.cloud_machines enable row level security;
alter table public.traders enable row level security;
alter table public.signals enable row level security;
alter table public.machine_events enable row level security;
alter table public.webhook_events enable row level security;

drop policy if exists cloud_machines_select_own on public.cloud_machines;
create policy cloud_machines_select_own on public.cloud_machines for select to authenticated using (user_id = auth.uid());

drop policy if exists traders_all_own on public.traders;
create policy traders_all_own on public.traders for all to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());

drop policy if exists signals_select_own on public.signals;
create policy signals_select_own on public.signals for select to authenticated using (user_id = auth.uid());
drop policy if exists signals_insert_own on public.signals;
-- A machine (acting as its user) may only store signals for that user's own traders.
create policy signals_insert_own on public.signals for insert to authenticated
  with check (
    user_id = auth.uid()
    and exists (select 1 from public.traders t where t.id = trader_id and t.user_id = auth.uid())
  );

drop policy if exists machine_events_select_own on public.machine_events;
create policy machine_events_select_own on public.machine_events for select to authenticated using (user_id = auth.uid());

-- webhook_events: no policy, so only the service role reads or writes it.

-- Privileges (Supabase grants broadly by default; we state exactly what each role needs).
revoke all on public.cloud_machines, public.traders, public.signals, public.machine_events,
  public.webhook_events from anon, authenticated;
grant select on public.cloud_machines, public.machine_events to authenticated;
grant select, insert, update, delete on public.traders to authenticated;
grant select, insert on public.signals to authenticated;
grant all on public.profiles, public.cloud_machines, public.traders, public.signals, public.machine_events,
  public.webhook_events to service_role;
revoke execute on function public.record_machine_transition from public, anon, authenticated;
revoke execute on function public.record_webhook_event from public, anon, authenticated;
grant execute on function public.record_machine_transition to service_role;
grant execute on function public.record_webhook_event to service_role;

-- profiles: only when this migration created it (local mode). A user reads their own row; the tier is
-- the app's (and the service role's) to write. The screener app's own table is left as it is.
do $$
begin
  if current_setting('cloud_execution.created_profiles', true) = 'on' then
    alter table public.profiles enable row level security;
    drop policy if exists profiles_select_own on public.profiles;
    create policy profiles_select_own on public.profiles for select to authenticated using (id = auth.uid());
    revoke all on public.profiles from anon, authenticated;
    grant select on public.profiles to authenticated;
    perform set_config('cloud_execution.created_profiles', '', false);
  end if;
end
$$;
