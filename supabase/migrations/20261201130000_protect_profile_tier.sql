-- A user can never change their own tier (security review, issue 15). Today `authenticated` has no
-- UPDATE on profiles at all; this trigger holds even if the screener app ever grants it (to let users
-- edit a display name, say): the tier and its change stamp are written only by the app's backend,
-- the service role or the database owner.
create or replace function public.profiles_guard_tier() returns trigger
  language plpgsql
  set search_path = public
as $$
begin
  if current_user in ('authenticated', 'anon')
     and (new.subscription_tier is distinct from old.subscription_tier
          or new.subscription_tier_changed_at is distinct from old.subscription_tier_changed_at) then
    raise exception 'subscription_tier is not yours to change'
      using errcode = '42501', hint = 'the tier is set by billing, not by the user';
  end if;
  return new;
end
$$;
drop trigger if exists profiles_guard_tier on public.profiles;
-- Named to sort before profiles_touch_tier_changed_at: a refused change is refused before it is stamped.
create trigger profiles_guard_tier before update on public.profiles
  for each row execute function public.profiles_guard_tier();
revoke execute on function public.profiles_guard_tier from public, anon, authenticated;
