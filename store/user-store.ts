import { createMachineApiUserStore } from './machine-api';
import { createSupabaseUserStore } from './supabase';
import type { UserStore } from './types';

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
