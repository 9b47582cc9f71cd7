-- Where each user's machine runtime stood (machine-runtime/checkpoint.ts): per stream the open time of
-- the last candle evaluated with all its signals stored, the traders running then, and the machine
-- that wrote it. A restarted machine (self-heal, image rollout, host move) reads it to evaluate the
-- closes it missed, once, instead of losing them. One row per user, written by the machine as its
-- user (Supabase REST, or the API's /v1/machine/checkpoint under RLS): a machine holds no database
-- credential, so RLS is what keeps one machine from reading or moving another user's checkpoint.
create table if not exists public.runtime_checkpoints (
  user_id uuid primary key references auth.users (id) on delete cascade,
  machine_id text,
  streams jsonb not null default '{}'::jsonb,
  traders jsonb not null default '{}'::jsonb,
  updated_at timestamptz not null default now(),
  -- At most 1,000 streams and a few hundred traders (the runtime's budget): 256 KB is far above that
  -- and keeps a misbehaving machine from storing megabytes.
  constraint runtime_checkpoints_size check (octet_length(streams::text) + octet_length(traders::text) <= 262144),
  constraint runtime_checkpoints_machine_id check (machine_id is null or length(machine_id) <= 100)
);

-- The database's clock, whoever writes (PostgREST upsert or the API's insert … on conflict).
create or replace function public.runtime_checkpoints_touch() returns trigger
  language plpgsql
  set search_path = public
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
drop trigger if exists runtime_checkpoints_touch on public.runtime_checkpoints;
create trigger runtime_checkpoints_touch before insert or update on public.runtime_checkpoints
  for each row execute function public.runtime_checkpoints_touch();

alter table public.runtime_checkpoints enable row level security;
drop policy if exists runtime_checkpoints_select_own on public.runtime_checkpoints;
create policy runtime_checkpoints_select_own on public.runtime_checkpoints for select to authenticated
  using (user_id = auth.uid());
drop policy if exists runtime_checkpoints_insert_own on public.runtime_checkpoints;
create policy runtime_checkpoints_insert_own on public.runtime_checkpoints for insert to authenticated
  with check (user_id = auth.uid());
drop policy if exists runtime_checkpoints_update_own on public.runtime_checkpoints;
create policy runtime_checkpoints_update_own on public.runtime_checkpoints for update to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());

revoke all on public.runtime_checkpoints from anon, authenticated;
-- An upsert (insert … on conflict do update) needs select, insert and update; nothing deletes it but
-- the user's own deletion (cascade).
grant select, insert, update on public.runtime_checkpoints to authenticated;
grant all on public.runtime_checkpoints to service_role;
revoke execute on function public.runtime_checkpoints_touch from public, anon, authenticated;
