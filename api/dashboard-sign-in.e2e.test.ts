import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createSupabaseAuth, type SupabaseAuthStandIn } from '../dev/supabase-auth/server';
import { ELITE_USER_ID, FREE_USER_ID, seedDevUsers } from '../dev/stack/seed';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { until, untilValue } from '../test/kit/wait';
import { createTokenVerifier } from './auth';
import { createApiStack, type ApiStack } from './test-support/api-stack';
import { expectProblem } from './test-support/problem';

jest.setTimeout(180_000);

/**
 * Signing in to the trader's page in real Chromium: local mode's dev sign-in, and Supabase Auth (its
 * stand-in, dev/supabase-auth) with email + password, renewed short-lived tokens and a magic link.
 */
const ANON_KEY = 'anon-key-of-the-sign-in-test';
const ELITE = { id: ELITE_USER_ID, email: 'elite@example.test', password: 'elite-password-0' };
const FREE = { id: FREE_USER_ID, email: 'free@example.test', password: 'free-password-0' };
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number; sub: string; iss: string };

describe('signing in to the dashboard, in Chromium', () => {
  let api: ApiStack;
  let auth: SupabaseAuthStandIn;
  let devApp: { url: string };
  let supabaseApp: { url: string };
  let browser: Browser;

  /** A fresh browser profile (its own storage and clock), the page's console errors collected. */
  const newPage = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    return { context, page, errors };
  };
  // Kept after the run (its path is logged) so the screenshots can be looked at.
  const shots = mkdtempSync(join(tmpdir(), 'ce-sign-in-shots-'));
  const shoot = async (page: Page, name: string) => {
    await page.screenshot({ path: join(shots, `${name}.png`) });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, `${name}-phone.png`) });
    await page.setViewportSize({ width: 1280, height: 800 });
  };
  const activeId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');
  const signedInView = (page: Page) => page.waitForSelector('#signed-in:not([hidden])');
  const signInView = (page: Page) => page.waitForSelector('#sign-in:not([hidden])');

  beforeAll(async () => {
    api = await createApiStack();
    await seedDevUsers(api.stack.db.url); // the users npm start seeds, with their sample traders
    auth = await createSupabaseAuth({ jwtSecret: TEST_JWT_SECRET, anonKey: ANON_KEY, users: [ELITE, FREE] });
    // Dev sign-in needs a stack that is clearly local: fly-local's address (the app talks to the test's own).
    devApp = await api.startApp({ API_DEV_SIGN_IN: 'true', FLY_API_URL: 'http://127.0.0.1:4280/v1' });
    supabaseApp = await api.startApp({ SUPABASE_URL: auth.url, SUPABASE_ANON_KEY: ANON_KEY });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await auth?.close();
    await api?.close();
    console.warn(`sign-in screenshots in ${shots}`);
  });

  test('dev sign-in: the labelled button signs the elite user in, calls work, sign out; an expired one asks again', async () => {
    const { context, page, errors } = await newPage();
    await page.clock.install(); // time flows; it jumps ahead below, past the dev token's hour
    const traders = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/traders' && r.status() === 200);
    await page.goto(devApp.url);
    const dev = page.getByRole('region', { name: 'Dev sign-in (local mode only)' });
    await dev.getByRole('button', { name: /^Sign in as free/ }).waitFor();
    await shoot(page, 'dev-sign-in');
    await dev.getByRole('button', { name: 'Sign in as elite@example.test (elite)' }).click();
    await signedInView(page);
    expect(await page.textContent('#signed-in-as')).toBe(ELITE.email);
    expect(await page.textContent('#signed-in-via')).toBe('with dev sign-in');
    await shoot(page, 'dev-signed-in');
    expect(await page.textContent('#token-expiry')).toMatch(/^Token expires at .+; then you sign in again\.$/);
    expect(await page.textContent('#whoami')).toMatch(/^elite@example\.test · token expires /);
    expect(await activeId(page)).toBe('signed-in'); // the focus follows the view

    // An authenticated call with the dev token: the seeded user's own traders.
    const answered = await traders;
    const bearer = answered
      .request()
      .headers()
      .authorization!.replace(/^Bearer /, '');
    const verify = createTokenVerifier({ jwtSecret: TEST_JWT_SECRET });
    await expect(verify(bearer)).resolves.toMatchObject({ id: ELITE_USER_ID });
    await page.waitForFunction(() => /BTC momentum/.test(document.querySelector('#traders')?.textContent ?? ''));

    // Kept across a reload; Sign out returns to the sign-in view, the focus on its first button.
    await page.reload();
    await signedInView(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInView(page);
    expect(await page.textContent('#whoami')).toBe('not signed in');
    expect(await page.evaluate(() => localStorage.getItem('cloud-machine.sign-in'))).toBeNull();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toMatch(/^Sign in as /);
    await page.waitForFunction(() => !/BTC momentum/.test(document.querySelector('#traders')?.textContent ?? ''));

    // A dev token is not renewed: an hour later the page is back at the sign-in view, saying why.
    await dev.getByRole('button', { name: /^Sign in as free@example\.test/ }).click();
    await signedInView(page);
    expect(await page.textContent('#signed-in-as')).toBe(FREE.email);
    await page.clock.fastForward('01:00:00');
    await page.waitForSelector('#sign-in-notice:not([hidden])');
    expect(await page.textContent('#sign-in-notice')).toBe(
      'Your dev sign-in expired (a dev token is not renewed): sign in again.',
    );
    await shoot(page, 'dev-expired');
    expect(await page.isHidden('#signed-in')).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('API_DEV_SIGN_IN off: no dev section and no routes; on: users and short tokens, never in the OpenAPI document', async () => {
    const { context, page } = await newPage();
    await page.goto(api.url);
    // No way in but a token: the Advanced form stands open.
    await page.waitForFunction(() => document.querySelector('#token-details')?.hasAttribute('open'));
    expect(await page.isHidden('#dev-sign-in')).toBe(true);
    expect(await page.isHidden('#supabase-form')).toBe(true);
    expect(await page.isVisible('#no-sign-in')).toBe(true);
    await context.close();

    expect((await api.call('GET', '/v1/options')).json.auth).toEqual({ supabase: null, devSignIn: false });
    expectProblem(await api.call('POST', '/v1/dev/sign-in', { body: { userId: ELITE_USER_ID } }), 404);
    expectProblem(await api.call('GET', '/v1/dev/users'), 404);

    const base = devApp.url;
    expect((await api.call('GET', '/v1/options', { base })).json.auth).toEqual({ supabase: null, devSignIn: true });
    const users = (await api.call('GET', '/v1/dev/users', { base })).json.users;
    expect(users).toEqual([
      { id: ELITE_USER_ID, email: ELITE.email, tier: 'elite' },
      { id: FREE_USER_ID, email: FREE.email, tier: 'free' },
    ]);
    const minted = await api.call('POST', '/v1/dev/sign-in', { base, body: { userId: ELITE_USER_ID } });
    expect(minted.status).toBe(200);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    expect(minted.json).toMatchObject({ expires_in: 3600, token_type: 'bearer' });
    const token = minted.json.access_token as string;
    expect((await api.call('GET', '/v1/traders', { token })).status).toBe(200);
    expectProblem(await api.call('POST', '/v1/dev/sign-in', { base, body: { userId: randomUUID() } }), 404);
    expectProblem(await api.call('POST', '/v1/dev/sign-in', { base, body: { userId: 'elite' } }), 400);
    const doc = (await api.call('GET', '/openapi.json', { base })).json as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/v1/dev'))).toEqual([]);
    // Built against the real Fly API (the config's default), an app with it on does not start.
    await expect(api.startApp({ API_DEV_SIGN_IN: 'true' })).rejects.toThrow(/API_DEV_SIGN_IN is on, but this stack/);
  });

  test('Supabase: keyboard to the form, a wrong password is a sentence, short tokens renewed, magic link', async () => {
    auth.setAccessTokenTtl(4); // seconds: supabase-js renews them all the time
    const { context, page, errors } = await newPage();
    const events: { token: string; status: number }[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname !== '/v1/machines/me/events') return;
      events.push({
        token:
          r
            .request()
            .headers()
            .authorization?.replace(/^Bearer /, '') ?? '',
        status: r.status(),
      });
    });
    await page.goto(supabaseApp.url);
    await page.waitForSelector('#supabase-form:not([hidden])');
    expect(await page.isHidden('#dev-sign-in')).toBe(true);
    expect(await page.getAttribute('#token-details', 'open')).toBeNull(); // pasting is folded under Advanced

    // Tab reaches the form, Enter submits; a wrong password is said in words, the focus back on it.
    for (let i = 0; i < 12 && (await activeId(page)) !== 'sign-in-email'; i++) await page.keyboard.press('Tab');
    expect(await activeId(page)).toBe('sign-in-email');
    await page.keyboard.type(ELITE.email);
    await page.keyboard.press('Tab');
    expect(await activeId(page)).toBe('sign-in-password');
    await page.keyboard.type('not-the-password');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sign-in-error:not(:empty)');
    expect(await page.textContent('#sign-in-error')).toBe('The email or password is not right.');
    expect(await page.getAttribute('#sign-in-password', 'aria-invalid')).toBe('true');
    expect(await activeId(page)).toBe('sign-in-password');
    await shoot(page, 'supabase-wrong-password');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(ELITE.password);
    await page.keyboard.press('Enter');
    await signedInView(page);
    expect(await page.textContent('#signed-in-as')).toBe(ELITE.email);
    expect(await page.textContent('#signed-in-via')).toBe('with Supabase');
    await page.waitForFunction(() => /BTC momentum/.test(document.querySelector('#traders')?.textContent ?? ''));

    // The page's status stream ends with each token; it comes back with a renewed one and keeps answering.
    const renewed = await untilValue(
      'the status stream reopened with three renewed tokens',
      () => events.filter((e) => e.status === 200).map((e) => e.token),
      (tokens) => new Set(tokens).size >= 3,
      { timeoutMs: 60_000, everyMs: 250 },
    );
    // Each a token of the stand-in's, for the signed-in user, and each one later than the one before.
    expect(renewed.map((t) => [claims(t).sub, claims(t).iss])).toEqual(
      renewed.map(() => [ELITE.id, `${auth.url}/auth/v1`]),
    );
    expect(claims(renewed.at(-1)!).exp).toBeGreaterThan(claims(renewed[0]!).exp);
    expect(auth.stats['token:refresh_token']).toBeGreaterThanOrEqual(2);
    expect(events.filter((e) => e.status === 401)).toEqual([]);
    expect(await page.isHidden('#error')).toBe(true);
    const lastEvents = events.length;
    await page.reload(); // the stored session, long expired, is renewed before the first call
    await page.waitForFunction(() => /BTC momentum/.test(document.querySelector('#traders')?.textContent ?? ''));
    await until('a status stream after the reload', () => events.slice(lastEvents).some((e) => e.status === 200));
    auth.setAccessTokenTtl(3600);

    // Sign out ends the session at Supabase too.
    const logouts = auth.stats.logout ?? 0;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInView(page);
    await until('the stand-in saw the sign-out', () => (auth.stats.logout ?? 0) > logouts);
    expect(await activeId(page)).toBe('sign-in-email');

    // Magic link: asked for on the page, opened from the outbox, signed in; the same link again is refused.
    await page.fill('#sign-in-email', 'nobody@example.test');
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.waitForSelector('#sign-in-error:not(:empty)');
    expect(await page.textContent('#sign-in-error')).toBe('There is no account with this email address.');
    await page.fill('#sign-in-email', ELITE.email);
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.waitForSelector('#magic-link-sent:not([hidden])');
    expect(await page.textContent('#magic-link-sent')).toContain(ELITE.email);
    const mail = auth.outbox.at(-1)!;
    expect(mail.to).toBe(ELITE.email);
    expect(new URL(new URL(mail.link).searchParams.get('redirect_to')!).origin).toBe(supabaseApp.url);
    await page.goto(mail.link);
    await signedInView(page);
    expect(await page.textContent('#signed-in-as')).toBe(ELITE.email);
    expect(page.url()).not.toContain('access_token'); // supabase-js takes the session out of the URL
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInView(page);
    await page.goto(mail.link);
    await page.waitForSelector('#sign-in-notice:not([hidden])');
    expect(await page.textContent('#sign-in-notice')).toBe(
      'The sign-in link has expired or was already used: ask for a new one.',
    );
    expect(page.url()).not.toContain('error');
    expect(errors).toEqual([]);
    await context.close();
  });
});
