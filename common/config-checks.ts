import { ConfigError } from './config';
import { envDocs } from './env-docs';
import { isLocalServiceUrl, isLoopbackUrl } from './loopback';

type Env = Record<string, string | undefined>;
type Issue = { variable: string; message: string };
const set = (env: Env, name: string) => env[name] !== undefined && env[name] !== '';

/** The control plane's store: Postgres (DATABASE_URL) or Supabase (URL + service key), never half of one. */
export function storeIssues(env: Env): Issue[] {
  if (set(env, 'SUPABASE_URL') && !set(env, 'SUPABASE_SERVICE_KEY') && !set(env, 'DATABASE_URL'))
    return [
      {
        variable: 'SUPABASE_SERVICE_KEY',
        message: `is required with SUPABASE_URL: ${envDocs.SUPABASE_SERVICE_KEY} (or set DATABASE_URL instead)`,
      },
    ];
  if (!set(env, 'SUPABASE_URL') && set(env, 'SUPABASE_SERVICE_KEY') && !set(env, 'DATABASE_URL'))
    return [{ variable: 'SUPABASE_URL', message: `is required with SUPABASE_SERVICE_KEY: ${envDocs.SUPABASE_URL}` }];
  if (!set(env, 'DATABASE_URL') && !set(env, 'SUPABASE_URL'))
    return [
      {
        variable: 'DATABASE_URL',
        message: `is required: ${envDocs.DATABASE_URL}, or SUPABASE_URL with SUPABASE_SERVICE_KEY for Supabase`,
      },
    ];
  return [];
}

/** Machines reach Supabase REST with the anon key and their own token: a URL without the key gives them no store. */
export function machineStoreIssues(env: Env): Issue[] {
  if (set(env, 'SUPABASE_URL') && !set(env, 'SUPABASE_ANON_KEY'))
    return [
      {
        variable: 'SUPABASE_ANON_KEY',
        message: `is required with SUPABASE_URL: ${envDocs.SUPABASE_ANON_KEY}; without it machines would have no store and never become healthy`,
      },
    ];
  if (!set(env, 'SUPABASE_URL') && !set(env, 'MACHINE_API_URL'))
    return [
      {
        variable: 'MACHINE_API_URL',
        message: `is required without Supabase: ${envDocs.MACHINE_API_URL}; machines never get a database credential`,
      },
    ];
  return [];
}

/** The real Fly API needs a real token: found now, not at the first provision. */
export function flyIssues(env: Env, devToken: string): Issue[] {
  const url = env.FLY_API_URL || 'https://api.machines.dev/v1';
  if (!isLocalServiceUrl(url) && (!set(env, 'FLY_API_TOKEN') || env.FLY_API_TOKEN === devToken))
    return [
      {
        variable: 'FLY_API_TOKEN',
        message: `is required for the Fly API at ${new URL(url).host}: ${envDocs.FLY_API_TOKEN}`,
      },
    ];
  return [];
}

/**
 * API_DEV_SIGN_IN hands out a token for any local user without a password: only where the stack is
 * clearly local (fly-local or this host, no Supabase but one on this host, the local Postgres whose
 * users it lists). Anything else is refused at start-up, not quietly ignored.
 */
export function devSignInIssues(env: Env): Issue[] {
  if (!['true', '1'].includes(env.API_DEV_SIGN_IN ?? '')) return [];
  const fly = env.FLY_API_URL || 'https://api.machines.dev/v1';
  const why: string[] = [];
  if (!isLocalServiceUrl(fly)) why.push(`FLY_API_URL is ${fly}, not fly-local or this host`);
  if (set(env, 'SUPABASE_URL') && !isLoopbackUrl(env.SUPABASE_URL!))
    why.push(`SUPABASE_URL is ${env.SUPABASE_URL}, not this host`);
  else if (!set(env, 'DATABASE_URL') || (set(env, 'SUPABASE_URL') && set(env, 'SUPABASE_SERVICE_KEY')))
    why.push(
      'the store is not a local Postgres (DATABASE_URL, without SUPABASE_SERVICE_KEY) whose users it could list',
    );
  if (why.length === 0) return [];
  return [
    {
      variable: 'API_DEV_SIGN_IN',
      message: `is on, but this stack is not clearly local (${why.join('; ')}): dev sign-in gives a token for any user without a password, so it is for local mode only; unset API_DEV_SIGN_IN`,
    },
  ];
}

/** Throws one ConfigError for every combination that cannot work. */
export function refuse(issues: Issue[]): void {
  if (issues.length > 0) throw new ConfigError(issues);
}
