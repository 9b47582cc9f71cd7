import { createPostgresStore, type PostgresStore } from './postgres';
import { createMachineApiUserStore } from './machine-api';
import { createSupabaseStore, createSupabaseUserStore } from './supabase';
import type { ServiceStore, UserStore } from './types';

export * from './types';
export { createPostgresStore, createPostgresUserStore } from './postgres';
export { createSupabaseStore, createSupabaseUserStore } from './supabase';
export { createMachineApiUserStore } from './machine-api';
export { migrate } from './migrate';

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

/**
 * A user's store for the machine runtime, which never holds a database credential: Supabase REST with
 * the anon key and the user's minted token (RLS enforced by PostgREST), or else the control plane's
 * machine-facing API, signed with the machine's own key (the API applies RLS as the user).
 */
export async function openUserStore(opts: {
  userId: string;
  accessToken: string | (() => string);
  supabaseUrl?: string;
  supabaseAnonKey?: string;
  machineApiUrl?: string;
  machineKey?: string;
}): Promise<UserStore & { close(): Promise<void> }> {
  const getAccessToken = typeof opts.accessToken === 'function' ? opts.accessToken : () => opts.accessToken as string;
  if (opts.supabaseUrl && opts.supabaseAnonKey) {
    const store = createSupabaseUserStore({
      url: opts.supabaseUrl,
      anonKey: opts.supabaseAnonKey,
      userId: opts.userId,
      getAccessToken,
    });
    return { ...store, close: async () => undefined };
  }
  if (!opts.machineApiUrl || !opts.machineKey)
    throw new Error(
      'no store configured: set MACHINE_API_URL (and the machine key), or SUPABASE_URL and SUPABASE_ANON_KEY',
    );
  return createMachineApiUserStore({ apiUrl: opts.machineApiUrl, userId: opts.userId, machineKey: opts.machineKey });
}
