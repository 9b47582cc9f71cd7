-- One timeline per user and an uptime ledger (issue 19; docs/technical-description.md, "Reason codes" and
-- "Timeline and uptime"). Nothing here is remembered anywhere but in these rows: the ledger is rebuilt from
-- them, so it is right across continue-as-new, worker crashes and machine replacements.

-- Every transition carries a reason code (common/reason-codes.ts); rows from before it have none (the readers
-- derive it from `reason`). `occurred_at` becomes the writer's instant when it gives one: the workflow's own
-- clock, so a local activity retried a minute later (the database was down) still records when it happened.
alter table public.machine_events add column if not exists reason_code text
  check (reason_code is null or reason_code ~ '^[a-z_]+(:[a-z_]+)?$');
create index if not exists webhook_events_user_occurred_idx on public.webhook_events (user_id, occurred_at desc);

drop function if exists public.record_machine_transition(uuid, text, text, text, text, text, text, text, text,
  timestamptz, jsonb, text);
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
  p_transition_id text default null,
  p_reason_code text default null,
  p_occurred_at timestamptz default null
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
    insert into public.machine_events (user_id, workflow_id, fly_machine_id, from_status, to_status, reason, details,
      transition_id, reason_code, occurred_at)
    values (p_user_id, result.workflow_id, result.machine_id, previous, p_status, p_reason, coalesce(p_details, '{}'::jsonb),
      p_transition_id, p_reason_code, coalesce(p_occurred_at, now()));
  end if;
  return result;
end
$$;
revoke execute on function public.record_machine_transition from public, anon, authenticated;
grant execute on function public.record_machine_transition to service_role;

-- A user reads their own billing events' outcomes (never the provider's payload): for the timeline.
drop policy if exists webhook_events_select_own on public.webhook_events;
create policy webhook_events_select_own on public.webhook_events for select to authenticated using (user_id = auth.uid());
grant select (id, type, user_id, occurred_at, outcome, outcome_detail, received_at) on public.webhook_events to authenticated;

-- The timeline's rows: transitions and billing events in one shape. security_invoker: the caller's RLS applies,
-- so a user sees only their own rows; the service role sees all (and filters by user). `seq` orders rows of one
-- instant (machine events by id, zero-padded; billing events by their id) and, with `at` and `source`, is the cursor.
create or replace view public.machine_timeline with (security_invoker = true) as
  select e.user_id, e.occurred_at as at, 'machine'::text as source, lpad(e.id::text, 20, '0') as seq,
    e.from_status, e.to_status, e.reason, e.reason_code, e.details, e.workflow_id, e.fly_machine_id,
    null::text as billing_type, null::text as billing_outcome, null::text as billing_detail, null::text as billing_tier,
    null::timestamptz as received_at
  from public.machine_events e
  union all
  select w.user_id, coalesce(w.occurred_at, w.received_at), 'billing', w.id,
    null, null, null, null, '{}'::jsonb, null, null,
    w.type, w.outcome, w.outcome_detail,
    case when w.type = 'tier.changed' then substring(w.outcome_detail from '^tier (\w+)$') end,
    w.received_at
  from public.webhook_events w
  where w.user_id is not null;

-- One page of a user's timeline, newest first, strictly before the cursor (at, source, seq) when one is given.
create or replace function public.machine_timeline_page(
  p_user_id uuid,
  p_limit integer default 50,
  p_before_at timestamptz default null,
  p_before_source text default null,
  p_before_seq text default null
) returns setof public.machine_timeline
  language sql
  stable
  security invoker
  set search_path = public
as $$
  select * from public.machine_timeline t
  where t.user_id = p_user_id
    and (p_before_at is null or (t.at, t.source, t.seq) < (p_before_at, p_before_source, p_before_seq))
  order by t.at desc, t.source desc, t.seq desc
  limit least(greatest(coalesce(p_limit, 50), 1), 200)
$$;

-- What the uptime ledger is built from (common/uptime-ledger.ts), oldest first, per user: every transition and
-- every applied billing event since the user's last start at or before p_from (the state at p_from follows from
-- them), plus the last applied tier change and payment event before that start. Null p_user_ids: every user
-- with a transition. The grace end of a payment.failed is read back from apply_billing_event's detail.
create or replace function public.uptime_records(p_user_ids uuid[], p_from timestamptz, p_to timestamptz)
  returns table (
    user_id uuid, at timestamptz, source text, seq text, to_status text, reason text, reason_code text,
    down_since timestamptz, billing_type text, billing_tier text, grace_ends_at timestamptz)
  language sql
  stable
  security invoker
  set search_path = public
as $$
  with users as (
    select distinct e.user_id from public.machine_events e
    where p_user_ids is null or e.user_id = any(p_user_ids)
  ), anchors as (
    select u.user_id, coalesce((select max(e.occurred_at) from public.machine_events e
      where e.user_id = u.user_id and e.to_status = 'provisioning' and e.occurred_at <= p_from), '-infinity') as at
    from users u
  ), billing as (
    -- Only the columns a user may read (never the payload): the same function serves the user and the service.
    select w.user_id, w.id, w.type, w.occurred_at, w.outcome_detail, row_number() over (partition by w.user_id, w.type = 'tier.changed', w.occurred_at >= a.at
      order by w.occurred_at desc, w.id desc) as newest
    from anchors a join public.webhook_events w on w.user_id = a.user_id
    where w.outcome = 'applied' and w.occurred_at < p_to
  )
  select e.user_id, e.occurred_at, 'machine', lpad(e.id::text, 20, '0'), e.to_status, e.reason, e.reason_code,
    (e.details #>> '{health,since}')::timestamptz, null, null, null
  from anchors a join public.machine_events e on e.user_id = a.user_id and e.occurred_at >= a.at and e.occurred_at < p_to
  union all
  select b.user_id, b.occurred_at, 'billing', b.id, null, null, null, null, b.type,
    case when b.type = 'tier.changed' then substring(b.outcome_detail from '^tier (\w+)$') end,
    case when b.type = 'payment.failed' then substring(b.outcome_detail from 'ends (\d{4}-\d\d-\d\dT[\d:.]+Z)')::timestamptz end
  from billing b join anchors a on a.user_id = b.user_id
  where b.occurred_at >= a.at or b.newest = 1
  order by 1, 2, 3, 4
$$;

revoke all on public.machine_timeline from anon, authenticated;
grant select on public.machine_timeline to authenticated, service_role;
revoke execute on function public.machine_timeline_page from public, anon;
revoke execute on function public.uptime_records from public, anon;
grant execute on function public.machine_timeline_page to authenticated, service_role;
grant execute on function public.uptime_records to authenticated, service_role;
