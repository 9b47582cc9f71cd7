import { createPostgresStore, type PostgresStore } from './postgres';
import { createSupabaseStore } from './supabase';
import type { ServiceStore } from './types';

/** The service store from configuration: Supabase when its URL and service key are set, else Postgres. */
export function openServiceStore(opts: {
  databaseUrl?: string;
  supabaseUrl?: string;
  supabaseServiceKey?: string;
}): ServiceStore | PostgresStore {
  if (opts.supabaseUrl && opts.supabaseServiceKey) {
    return createSupabaseStore({ url: opts.supabaseUrl, serviceKey: opts.supabaseServiceKey });
  }
  if (!opts.databaseUrl)
    throw new Error('no store configured: set DATABASE_URL, or SUPABASE_URL and SUPABASE_SERVICE_KEY');
  return createPostgresStore({ connectionString: opts.databaseUrl });
}
