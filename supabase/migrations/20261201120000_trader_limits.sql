-- A trader definition is bounded where it is stored (security review, trader limits). The machine
-- runtime refuses a definition over 32 KB of JSON before parsing it (machine-runtime/trader-schema.ts,
-- MAX_DEFINITION_BYTES); this backstop keeps a multi-megabyte one out of the table, and so out of
-- every machine's trader poll. 64 KB of jsonb text leaves room for jsonb's own spacing.
do $$
begin
  if not exists (
    select 1 from pg_constraint
    where conname = 'traders_definition_size' and conrelid = 'public.traders'::regclass
  ) then
    alter table public.traders
      add constraint traders_definition_size check (octet_length(definition::text) <= 65536);
  end if;
end
$$;
