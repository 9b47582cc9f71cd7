-- Local stand-in for the parts of Supabase's `auth` schema that our migrations and RLS use.
-- Applied by `npm run db:migrate` only on plain Postgres / PGlite, never on Supabase (which has the real one).
-- Mirrors Supabase: auth.uid() / auth.role() / auth.jwt() read the claims PostgREST puts in `request.jwt.claims`.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

-- The connecting role must be able to `set role` to these, as PostgREST's authenticator does.
grant anon, authenticated, service_role to current_user;

create schema if not exists auth;
comment on schema auth is 'cloud-execution local auth shim';

create table if not exists auth.users (
  id uuid primary key,
  email text unique,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);

create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;

create or replace function auth.uid() returns uuid
  language sql stable
  as $$ select nullif(auth.jwt() ->> 'sub', '')::uuid $$;

create or replace function auth.role() returns text
  language sql stable
  as $$ select coalesce(auth.jwt() ->> 'role', current_user::text) $$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on all functions in schema auth to anon, authenticated, service_role;
grant select on auth.users to service_role;
