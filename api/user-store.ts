import type { FastifyRequest } from 'fastify';
import type { PostgresStore } from '../store/postgres';
import { createSupabaseUserStore } from '../store/supabase';
import type { ServiceStore, UserHistoryStore, UserTraderStore } from '../store/types';
import { bearerToken, type AuthenticatedUser } from './auth';

/** The caller's own store (their traders, signals, history), under their RLS. */
export type CallerStore = (user: AuthenticatedUser, req: FastifyRequest) => UserTraderStore & UserHistoryStore;

/**
 * Plain Postgres acts as the user; Supabase goes through PostgREST with the caller's own access token
 * (and the anon key). Neither: undefined (the routes answer 501).
 */
export function callerStoreFor(deps: {
  store: ServiceStore;
  config: { SUPABASE_URL?: string; SUPABASE_ANON_KEY?: string };
}): CallerStore | undefined {
  const { store } = deps;
  if ('asUser' in store) return (user) => (store as PostgresStore).asUser(user.id);
  const { SUPABASE_URL: url, SUPABASE_ANON_KEY: anonKey } = deps.config;
  if (!url || !anonKey) return undefined;
  return (user, req) => {
    const token = bearerToken(req, false)!; // authenticated: the route's auth hook verified it
    return createSupabaseUserStore({ url, anonKey, userId: user.id, getAccessToken: () => token });
  };
}
