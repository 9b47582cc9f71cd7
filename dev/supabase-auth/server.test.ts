import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { createTokenVerifier } from '../../api/auth';
import { createSupabaseAuth, type SupabaseAuthStandIn } from './server';

/** The stand-in, driven by the real supabase-js (as the page drives it), its tokens checked by the API's verifier. */
const SECRET = 'stand-in-test-secret-0123456789abcdef';
const ANON = 'anon-key-for-the-stand-in-test';
const ELITE = { id: 'e1e7e000-0000-4000-8000-0000000000aa', email: 'elite@example.test', password: 'right-password' };

describe('the Supabase Auth stand-in, through supabase-js', () => {
  let auth: SupabaseAuthStandIn;
  const clients: SupabaseClient[] = [];
  const client = () => {
    const memory = new Map<string, string>();
    const c = createClient(auth.url, ANON, {
      auth: {
        autoRefreshToken: false,
        persistSession: true,
        detectSessionInUrl: false,
        storage: {
          getItem: (k) => memory.get(k) ?? null,
          setItem: (k, v) => void memory.set(k, v),
          removeItem: (k) => void memory.delete(k),
        },
      },
      realtime: { transport: WebSocket as unknown as never }, // Node 20 has no WebSocket; never connected here
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    auth = await createSupabaseAuth({ jwtSecret: SECRET, anonKey: ANON, users: [ELITE], reuseIntervalMs: 0 });
  });
  afterAll(async () => {
    for (const c of clients) await c.removeAllChannels();
    await auth.close();
  });

  test('email + password: a wrong password is GoTrue’s invalid_credentials; the right one a session the API accepts', async () => {
    const sb = client();
    const wrong = await sb.auth.signInWithPassword({ email: ELITE.email, password: 'nope' });
    expect(wrong.error).toMatchObject({
      status: 400,
      code: 'invalid_credentials',
      message: 'Invalid login credentials',
    });

    const { data, error } = await sb.auth.signInWithPassword({ email: 'Elite@Example.test', password: ELITE.password });
    expect(error).toBeNull();
    expect(data.session).toMatchObject({ token_type: 'bearer', expires_in: 3600, user: { id: ELITE.id } });
    expect(data.session!.expires_at).toBeGreaterThan(Date.now() / 1000);
    const verify = createTokenVerifier({ jwtSecret: SECRET, supabaseUrl: auth.url });
    await expect(verify(data.session!.access_token)).resolves.toMatchObject({ id: ELITE.id });
    expect((await sb.auth.getUser()).data.user?.email).toBe(ELITE.email);
  });

  test('refresh tokens rotate; a used one presented again revokes the session', async () => {
    const sb = client();
    const first = (await sb.auth.signInWithPassword(ELITE)).data.session!;
    const second = (await sb.auth.refreshSession()).data.session!;
    expect(second.refresh_token).not.toBe(first.refresh_token);

    const reused = await client().auth.refreshSession({ refresh_token: first.refresh_token });
    expect(reused.error).toMatchObject({ code: 'refresh_token_already_used' });
    // The whole session went with it: the token that was still good is refused too.
    const after = await client().auth.refreshSession({ refresh_token: second.refresh_token });
    expect(after.error).toMatchObject({ code: 'session_expired' });
  });

  test('sign-out ends the session: its refresh token is refused', async () => {
    const sb = client();
    const session = (await sb.auth.signInWithPassword(ELITE)).data.session!;
    expect((await sb.auth.signOut({ scope: 'local' })).error).toBeNull();
    const refused = await client().auth.refreshSession({ refresh_token: session.refresh_token });
    expect(refused.error).toMatchObject({ code: 'session_expired' });
  });

  test('magic link: the email lands in the outbox; its link redirects with a session once, then with an error', async () => {
    const sb = client();
    const redirectTo = 'http://127.0.0.1:3999/';
    const sent = await sb.auth.signInWithOtp({ email: ELITE.email, options: { emailRedirectTo: redirectTo } });
    expect(sent.error).toBeNull();
    const mail = auth.outbox.at(-1)!;
    expect(mail.to).toBe(ELITE.email);
    expect(mail.text).toContain(mail.link);

    const open = async () => {
      const r = await fetch(mail.link, { redirect: 'manual' });
      await r.arrayBuffer(); // frees the connection, so the server closes at once
      return r;
    };
    const res = await open();
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}/`).toBe(redirectTo);
    const fragment = new URLSearchParams(location.hash.slice(1));
    expect(fragment.get('type')).toBe('magiclink');
    expect(fragment.get('token_type')).toBe('bearer');
    const verify = createTokenVerifier({ jwtSecret: SECRET, supabaseUrl: auth.url });
    await expect(verify(fragment.get('access_token')!)).resolves.toMatchObject({ id: ELITE.id });

    const again = new URLSearchParams(new URL((await open()).headers.get('location')!).hash.slice(1));
    expect(again.get('error_code')).toBe('otp_expired');

    // The code in the same email kind works once through verifyOtp.
    await sb.auth.signInWithOtp({ email: ELITE.email });
    const code = auth.outbox.at(-1)!.otp;
    const verified = await sb.auth.verifyOtp({ email: ELITE.email, token: code, type: 'email' });
    expect(verified.data.session?.user.id).toBe(ELITE.id);
    expect((await sb.auth.verifyOtp({ email: ELITE.email, token: code, type: 'email' })).error).toMatchObject({
      code: 'otp_expired',
    });
    // No sign-ups: an unknown address is refused as GoTrue does with them off.
    const unknown = await sb.auth.signInWithOtp({ email: 'nobody@example.test' });
    expect(unknown.error).toMatchObject({ code: 'otp_disabled' });
  });

  test('the gateway’s apikey and CORS for a page on another origin', async () => {
    const noKey = await fetch(`${auth.url}/auth/v1/user`);
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toEqual({ message: 'No API key found in request' });
    const preflight = await fetch(`${auth.url}/auth/v1/token?grant_type=password`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'apikey, authorization, content-type, x-client-info, x-supabase-api-version',
      },
    });
    await preflight.arrayBuffer();
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('x-supabase-api-version');
    expect(auth.stats['token:password']).toBeGreaterThan(0);
  });
});
