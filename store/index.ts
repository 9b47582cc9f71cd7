import { createPostgresStore, type PostgresStore } from './postgres';
import { createSupabaseStore, createSupabaseUserStore } from './supabase';
import type { ServiceStore, UserStore } from './types';

export * from './types';
export { createPostgresStore, createPostgresUserStore } from './postgres';
export { createSupabaseStore, createSupabaseUserStore } from './supabase';
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
 * A user's store for the machine runtime. In production it is Supabase REST with the user's minted
 * token (RLS enforced by PostgREST). In local mode it is Postgres acting as the user, which trusts the
 * local process: acceptable on a developer's own machine, never used with a shared database.
 */
export async function openUserStore(opts: {
  userId: string;
  accessToken: string | (() => string);
  databaseUrl?: string;
  supabaseUrl?: string;
  supabaseAnonKey?: string;
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
  if (!opts.databaseUrl)
    throw new Error('no store configured: set DATABASE_URL, or SUPABASE_URL and SUPABASE_ANON_KEY');
  const service = createPostgresStore({ connectionString: opts.databaseUrl, max: 2 });
  return { ...service.asUser(opts.userId), close: () => service.close() };
}
