-- Per-user limits that every API replica shares (docs/operations.md, "Running several replicas"): the
-- request rate limit's counters and the leases of open streams. Only the service role touches them:
-- RLS on with no policies, nothing granted to anon or authenticated.

-- One fixed window per key (e.g. a user id): opened by the first hit, `hits` counted until `reset_at`.
create table if not exists public.api_rate_counters (
  key text primary key,
  window_started_at timestamptz not null,
  reset_at timestamptz not null,
  hits integer not null
);
create index if not exists api_rate_counters_reset_idx on public.api_rate_counters (reset_at);

-- Counts one hit on `p_key` and says whether it is within `p_max` per `p_window_ms`. The count is one
-- statement (INSERT … ON CONFLICT DO UPDATE: concurrent hits from any replica queue on the row), and
-- an ended window rolls over inside it. `hits` stops at p_max + 1: a flood costs no more than that.
create or replace function public.api_rate_hit(p_key text, p_window_ms integer, p_max integer)
  returns table (allowed boolean, remaining integer, reset_at timestamptz)
  language plpgsql
  set search_path = public
as $$
#variable_conflict use_column
begin
  if p_key is null or p_window_ms is null or p_window_ms <= 0 or p_max is null or p_max < 0 then
    raise exception 'api_rate_hit: a key, a window over 0 ms and a max of 0 or more are required'
      using errcode = '22023';
  end if;
  -- About one call in a hundred drops a batch of windows that ended over a minute ago (indexed, and
  -- rows another call holds are skipped), so the table holds roughly the keys active lately.
  if random() < 0.01 then
    delete from public.api_rate_counters d
    where d.key in (
      select k.key from public.api_rate_counters k
      where k.reset_at < now() - interval '1 minute'
      order by k.reset_at
      limit 500
      for update skip locked);
  end if;
  return query
    insert into public.api_rate_counters as c (key, window_started_at, reset_at, hits)
    values (p_key, now(), now() + p_window_ms * interval '1 millisecond', 1)
    on conflict (key) do update set
      window_started_at = case when c.reset_at <= now() then now() else c.window_started_at end,
      reset_at = case when c.reset_at <= now() then excluded.reset_at else c.reset_at end,
      hits = case when c.reset_at <= now() then 1 when c.hits > p_max then c.hits else c.hits + 1 end
    returning c.hits <= p_max, greatest(p_max - c.hits, 0), c.reset_at;
end
$$;

-- One row per open stream, held by the API replica that serves its socket and renewed while it is
-- open: a replica that dies stops renewing, and its leases stop counting once they expire. No foreign
-- key to auth.users: a lease outlives nothing, and a token's `sub` is checked by the API, not here.
create table if not exists public.api_stream_leases (
  lease_id text primary key,
  user_id uuid not null,
  acquired_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index if not exists api_stream_leases_user_idx on public.api_stream_leases (user_id, expires_at);
create index if not exists api_stream_leases_expires_idx on public.api_stream_leases (expires_at);

-- Takes a lease for one more stream of `p_user_id` if fewer than `p_max` live ones exist (expired ones
-- do not count). Acquirers of one user are serialised by a transaction-level advisory lock, so two
-- replicas cannot both see "one slot left". Acquiring a lease id already held and live renews it.
create or replace function public.stream_lease_acquire(p_user_id uuid, p_lease_id text, p_max integer, p_ttl_ms integer)
  returns table (acquired boolean, active integer)
  language plpgsql
  set search_path = public
as $$
#variable_conflict use_column
declare
  live integer;
  ttl interval := p_ttl_ms * interval '1 millisecond';
begin
  if p_user_id is null or p_lease_id is null or p_max is null or p_max < 1 or p_ttl_ms is null or p_ttl_ms <= 0 then
    raise exception 'stream_lease_acquire: a user, a lease id, a max of 1 or more and a ttl over 0 ms are required'
      using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('api_stream_lease:' || p_user_id::text, 0));
  update public.api_stream_leases l set expires_at = now() + ttl
  where l.lease_id = p_lease_id and l.user_id = p_user_id and l.expires_at > now();
  if not found then
    -- This user's expired leases go now; anyone's long expired ones a batch at a time.
    delete from public.api_stream_leases l where l.user_id = p_user_id and l.expires_at <= now();
    delete from public.api_stream_leases d
    where d.lease_id in (
      select k.lease_id from public.api_stream_leases k
      where k.expires_at < now() - interval '1 minute'
      order by k.expires_at
      limit 100
      for update skip locked);
    select count(*) into live from public.api_stream_leases l where l.user_id = p_user_id and l.expires_at > now();
    if live >= p_max then
      return query select false, live;
      return;
    end if;
    insert into public.api_stream_leases (lease_id, user_id, expires_at) values (p_lease_id, p_user_id, now() + ttl);
  end if;
  select count(*) into live from public.api_stream_leases l where l.user_id = p_user_id and l.expires_at > now();
  return query select true, live;
end
$$;

-- Extends a live lease by `p_ttl_ms` from now; false when it has expired or is gone (its stream must end:
-- another may have taken its place).
create or replace function public.stream_lease_renew(p_lease_id text, p_ttl_ms integer)
  returns boolean
  language plpgsql
  set search_path = public
as $$
begin
  if p_ttl_ms is null or p_ttl_ms <= 0 then
    raise exception 'stream_lease_renew: a ttl over 0 ms is required' using errcode = '22023';
  end if;
  update public.api_stream_leases l set expires_at = now() + p_ttl_ms * interval '1 millisecond'
  where l.lease_id = p_lease_id and l.expires_at > now();
  return found;
end
$$;

-- Gives a lease back (its stream closed); true if it was there. Idempotent.
create or replace function public.stream_lease_release(p_lease_id text)
  returns boolean
  language sql
  set search_path = public
as $$
  with gone as (delete from public.api_stream_leases where lease_id = p_lease_id returning 1)
  select exists (select 1 from gone);
$$;

alter table public.api_rate_counters enable row level security;
alter table public.api_stream_leases enable row level security;
revoke all on public.api_rate_counters, public.api_stream_leases from public, anon, authenticated;
grant all on public.api_rate_counters, public.api_stream_leases to service_role;
revoke execute on function public.api_rate_hit from public, anon, authenticated;
revoke execute on function public.stream_lease_acquire from public, anon, authenticated;
revoke execute on function public.stream_lease_renew from public, anon, authenticated;
revoke execute on function public.stream_lease_release from public, anon, authenticated;
grant execute on function public.api_rate_hit to service_role;
grant execute on function public.stream_lease_acquire to service_role;
grant execute on function public.stream_lease_renew to service_role;
grant execute on function public.stream_lease_release to service_role;
