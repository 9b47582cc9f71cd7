import { ConfigError } from '../common/config';
import { devSignInIssues } from '../common/config-checks';
import { loadApiConfig, loadApiProcessConfig } from './config';

/** API_DEV_SIGN_IN gives a token without a password: the API refuses to start with it anywhere but local mode. */
const LOCAL = {
  SUPABASE_JWT_SECRET: 'a-local-secret-of-at-least-32-characters',
  DATABASE_URL: 'postgres://postgres@127.0.0.1:55432/postgres',
  FLY_API_URL: 'http://127.0.0.1:4280/v1',
  API_DEV_SIGN_IN: 'true',
};
const messageOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '';
};

describe('API_DEV_SIGN_IN', () => {
  test('off by default; "true" or "1" turn it on; anything else is a sentence', () => {
    const { API_DEV_SIGN_IN: _on, ...off } = LOCAL;
    expect(loadApiConfig(off).API_DEV_SIGN_IN).toBe(false);
    expect(loadApiConfig(LOCAL).API_DEV_SIGN_IN).toBe(true);
    expect(loadApiConfig({ ...LOCAL, API_DEV_SIGN_IN: '1' }).API_DEV_SIGN_IN).toBe(true);
    expect(messageOf(() => loadApiConfig({ ...LOCAL, API_DEV_SIGN_IN: 'yes' }))).toContain(
      'API_DEV_SIGN_IN must be true or false',
    );
  });

  test('a local stack starts with it: fly-local on this host or as a compose service, a Supabase on this host', () => {
    expect(loadApiProcessConfig(LOCAL).API_DEV_SIGN_IN).toBe(true);
    expect(devSignInIssues({ ...LOCAL, FLY_API_URL: 'http://fly-local:4280/v1' })).toEqual([]);
    expect(devSignInIssues({ ...LOCAL, SUPABASE_URL: 'http://127.0.0.1:54321' })).toEqual([]);
    expect(devSignInIssues({ ...LOCAL, API_DEV_SIGN_IN: 'false', FLY_API_URL: 'https://api.machines.dev/v1' })).toEqual(
      [],
    );
  });

  test('the real Fly API (or its default) refuses start-up with a sentence naming the variable', () => {
    const { FLY_API_URL: _fly, ...noFly } = LOCAL;
    const message = messageOf(() => loadApiProcessConfig({ ...noFly, FLY_API_TOKEN: 'a-real-fly-token' }));
    expect(message).toContain(
      'API_DEV_SIGN_IN is on, but this stack is not clearly local (FLY_API_URL is https://api.machines.dev/v1, not fly-local or this host)',
    );
    expect(message).toContain('it is for local mode only; unset API_DEV_SIGN_IN');
  });

  test('a Supabase project that is not on this host, or no local Postgres to list users from, is refused too', () => {
    const cloud = devSignInIssues({ ...LOCAL, SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_KEY: 'k' });
    expect(cloud).toHaveLength(1);
    expect(cloud[0]!.variable).toBe('API_DEV_SIGN_IN');
    expect(cloud[0]!.message).toContain('SUPABASE_URL is https://abc.supabase.co, not this host');
    // A look-alike host is not this host (parsed, not pattern-matched).
    expect(devSignInIssues({ ...LOCAL, SUPABASE_URL: 'http://127.0.0.1.nip.io' })).toHaveLength(1);
    const { DATABASE_URL: _db, ...noDb } = LOCAL;
    expect(
      devSignInIssues({ ...noDb, SUPABASE_URL: 'http://127.0.0.1:54321', SUPABASE_SERVICE_KEY: 'k' })[0]!.message,
    ).toContain('the store is not a local Postgres');
  });
});
