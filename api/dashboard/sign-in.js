/* global document, window, localStorage, location, atob, fetch */
// Signing in, and the page's one source of its access token: getToken(). The ways in are those
// GET /v1/options's `auth` offers: Supabase Auth (email + password, or a magic link; supabase-js keeps
// and renews the session: ./sign-in-supabase.js), local mode's "Dev sign-in" (a seeded user, minted by
// the API when API_DEV_SIGN_IN is on) and, under Advanced, a pasted token. A dev or pasted token is not
// renewed: when it runs out the page goes back to the sign-in view and says why.
import { authErrorText, connectSupabase } from './sign-in-supabase';
import { $ } from './dom';

const STORE_KEY = 'cloud-machine.sign-in';
/** Where the page kept a pasted token before there was a sign-in: still honoured once. */
const LEGACY_TOKEN_KEY = 'cloud-machine.token';
/** A dev or pasted token is given up this long before its `exp`, so no request leaves with a dying token. */
const EXPIRY_MARGIN_MS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const VIA = { supabase: 'with Supabase', dev: 'with dev sign-in', token: 'with a pasted token' };
const EXPIRED = {
  dev: 'Your dev sign-in expired (a dev token is not renewed): sign in again.',
  token: 'The pasted token expired: paste a new one or sign in again.',
};

const clock = (ms) => new Date(ms).toLocaleTimeString();

function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

/** The API for what the client library does not cover (`auth` of GET /v1/options, /v1/dev/*); errors as sentences. */
async function api(path, body) {
  let res;
  try {
    const init = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' } };
    res = await fetch(new URL(path, location.origin), { ...init, body: body && JSON.stringify(body) });
  } catch {
    throw new Error('the API did not answer');
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.detail || `HTTP ${res.status}`);
  return json;
}

/**
 * `onChange(who)` runs after every sign-in and sign-out (`who`: `method:userId`, '' when signed out),
 * so the page reloads what it shows; a renewed token is not a change.
 */
export function createSignIn({ onChange }) {
  /** `{ method, userId, label, expiresAt, token? }` (`token` only for dev and pasted ones), or null. */
  let current = null;
  let supabase = null;
  let supabaseUrl = '';
  let hasSupabaseSession = false;
  // From our own Supabase sign-out until its SIGNED_OUT: events still queued (a renewal) are stale.
  let endingSupabase = false;
  let expiryTimer = 0;

  const who = () => (current ? `${current.method}:${current.userId}` : '');

  function render() {
    const on = !!current;
    $('signed-in').hidden = !on;
    $('sign-in').hidden = on;
    $('whoami').textContent = on ? `${current.label} · token expires ${clock(current.expiresAt)}` : 'not signed in';
    $('token-summary').textContent = current && current.method === 'token' ? 'in use' : '';
    if (!on) return;
    $('signed-in-as').textContent = current.label;
    $('signed-in-via').textContent = VIA[current.method];
    $('token-expiry').textContent =
      current.method === 'supabase'
        ? `Token expires at ${clock(current.expiresAt)}; it is renewed automatically.`
        : `Token expires at ${clock(current.expiresAt)}; then you sign in again.`;
  }

  function changed() {
    render();
    // The form the focus was in is gone: it moves to what replaced it, so keyboard users are not lost.
    const focus = document.activeElement;
    if (current && focus && ($('sign-in').contains(focus) || $('token-details').contains(focus)))
      $('signed-in').focus();
    onChange(who());
  }

  const notice = (text) => {
    $('sign-in-notice').textContent = text;
    $('sign-in-notice').hidden = !text;
  };

  // --- dev and pasted tokens: kept in localStorage, given up at their expiry ---------------------------
  function adoptLocal(method, token, label) {
    const claims = claimsOf(token);
    if (!claims || typeof claims.exp !== 'number' || !claims.sub)
      return 'That is not an access token: a JWT is three parts separated by dots.';
    const expiresAt = claims.exp * 1000;
    if (expiresAt - EXPIRY_MARGIN_MS <= Date.now()) return `That token expired at ${clock(expiresAt)}.`;
    const name = label || claims.email || `user ${String(claims.sub).slice(0, 8)}…`;
    current = { method, token, userId: String(claims.sub), label: name, expiresAt };
    localStorage.setItem(STORE_KEY, JSON.stringify({ method, token, label: name }));
    armExpiry();
    // One sign-in at a time: a Supabase session in this browser ends when another way is chosen.
    if (supabase && hasSupabaseSession) endSupabase();
    return '';
  }

  function armExpiry() {
    window.clearTimeout(expiryTimer);
    if (!current || current.method === 'supabase') return;
    const due = Math.min(current.expiresAt - EXPIRY_MARGIN_MS - Date.now(), MAX_TIMER_MS);
    expiryTimer = window.setTimeout(() => void (expired() || armExpiry()), Math.max(0, due));
  }

  /** A dev or pasted token at its end goes back to the sign-in view, saying why; true if it did. */
  function expired() {
    if (!current || current.method === 'supabase' || current.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return false;
    signOut(EXPIRED[current.method]);
    return true;
  }

  function restoreLocal() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
    } catch {
      saved = null;
    }
    const legacy = localStorage.getItem(LEGACY_TOKEN_KEY);
    if (!saved && legacy) saved = { method: 'token', token: legacy };
    localStorage.removeItem(LEGACY_TOKEN_KEY);
    if (!saved || !['dev', 'token'].includes(saved.method) || typeof saved.token !== 'string') return;
    const problem = adoptLocal(saved.method, saved.token, saved.label);
    if (problem) {
      localStorage.removeItem(STORE_KEY);
      notice(EXPIRED[saved.method]);
    } else if (saved.method === 'token') $('token').value = saved.token;
  }

  function signOut(why = '') {
    const was = current;
    current = null;
    window.clearTimeout(expiryTimer);
    localStorage.removeItem(STORE_KEY);
    notice(why);
    changed();
    if (was && was.method === 'supabase' && supabase) endSupabase();
  }

  function endSupabase() {
    endingSupabase = true;
    void supabase.signOut().then(({ error }) => {
      if (error) endingSupabase = false; // no SIGNED_OUT will come
    });
  }

  // --- Supabase ---------------------------------------------------------------------------------------
  function onSupabase(event, session) {
    hasSupabaseSession = !!session;
    if (event === 'SIGNED_OUT') endingSupabase = false;
    if (session && endingSupabase) return;
    if (session) {
      // A dev or pasted token was chosen after it (and its sign-out did not get through): it goes now.
      if (current && current.method !== 'supabase') return endSupabase();
      const fresh = !current || current.userId !== session.user.id;
      current = {
        method: 'supabase',
        userId: session.user.id,
        label: session.user.email || `user ${session.user.id.slice(0, 8)}…`,
        expiresAt: session.expires_at * 1000,
      };
      if (fresh) {
        notice('');
        changed();
      } else render(); // TOKEN_REFRESHED and the like: a new expiry, the same user
      return;
    }
    if (current && current.method === 'supabase')
      signOut('Your session has ended (it could not be renewed): sign in again.');
  }

  function formError(text, fieldId) {
    $('sign-in-error').textContent = text;
    for (const id of ['sign-in-email', 'sign-in-password'])
      $(id).setAttribute('aria-invalid', String(!!text && (id === fieldId || !fieldId)));
    if (fieldId) $(fieldId).focus();
  }

  async function withForm(work) {
    formError('');
    $('magic-link-sent').hidden = true;
    for (const id of ['sign-in-submit', 'magic-link']) $(id).disabled = true;
    try {
      await work($('sign-in-email').value.trim());
    } finally {
      for (const id of ['sign-in-submit', 'magic-link']) $(id).disabled = false;
    }
  }

  $('supabase-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void withForm(async (email) => {
      const password = $('sign-in-password').value;
      if (!email) return formError('Enter your email address.', 'sign-in-email');
      if (!password) return formError('Enter your password, or ask for a sign-in link.', 'sign-in-password');
      endingSupabase = false; // a deliberate sign-in: its SIGNED_IN is news
      const { error } = await supabase.signInWithPassword(email, password);
      if (error)
        return formError(
          authErrorText(error, supabaseUrl),
          error.code === 'invalid_credentials' ? 'sign-in-password' : undefined,
        );
      $('sign-in-password').value = ''; // the SIGNED_IN event does the rest
    });
  });

  $('magic-link').addEventListener('click', () => {
    void withForm(async (email) => {
      if (!email) return formError('Enter your email address first.', 'sign-in-email');
      const { error } = await supabase.sendLink(email);
      if (error) return formError(authErrorText(error, supabaseUrl), 'sign-in-email');
      $('magic-link-sent').textContent = `A sign-in link is on its way to ${email}: open it in this browser.`;
      $('magic-link-sent').hidden = false;
    });
  });

  // --- dev sign-in (local mode) and a pasted token --------------------------------------------------------
  async function loadDevUsers() {
    $('dev-sign-in').hidden = false;
    try {
      const { users } = await api('/v1/dev/users');
      const buttons = users.map((u) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'ghost';
        b.textContent = `Sign in as ${u.email || u.id} (${u.tier})`;
        b.addEventListener('click', () => void devSignIn(u));
        return b;
      });
      $('dev-users').replaceChildren(...buttons);
      if (!users.length) $('dev-sign-in-error').textContent = 'The local database has no users (npm start seeds two).';
    } catch (err) {
      $('dev-sign-in-error').textContent = `Could not list the local users: ${err.message}.`;
    }
  }

  async function devSignIn(user) {
    $('dev-sign-in-error').textContent = '';
    try {
      const minted = await api('/v1/dev/sign-in', { userId: user.id });
      const problem = adoptLocal('dev', minted.access_token, user.email || undefined);
      if (problem) throw new Error(problem);
      notice('');
      changed();
    } catch (err) {
      $('dev-sign-in-error').textContent = `Dev sign-in did not work: ${err.message}`;
    }
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const problem = adoptLocal('token', $('token').value.trim());
    $('token-error').textContent = problem;
    if (problem) return;
    // Folded once in use; it opens again to paste another.
    $('token-details').open = false;
    notice('');
    changed();
  });

  $('sign-out').addEventListener('click', () => {
    signOut();
    const shown = [...document.querySelectorAll('#sign-in input, #sign-in button')].find((e) => e.offsetParent);
    (shown || $('token-details').querySelector('summary')).focus();
  });

  // Another tab signed in or out with a dev or pasted token.
  window.addEventListener('storage', (ev) => {
    if (ev.key !== STORE_KEY || (current && current.method === 'supabase')) return;
    current = null;
    restoreLocal();
    changed();
  });

  /** Restores a stored sign-in at once, then asks the API which ways in it offers and sets them up. */
  async function start() {
    restoreLocal();
    changed();
    let auth = { supabase: null, devSignIn: false };
    try {
      auth = (await api('/v1/options')).auth || auth;
    } catch (err) {
      notice(`Could not ask the API how to sign in (${err.message}): paste a token under Advanced.`);
    }
    $('no-sign-in').hidden = !!(auth.supabase || auth.devSignIn);
    // With no other way in, the paste form is the sign-in and stands open.
    if (!current && !auth.supabase && !auth.devSignIn) $('token-details').open = true;
    if (auth.devSignIn) void loadDevUsers();
    if (!auth.supabase) return;
    supabaseUrl = auth.supabase.url;
    try {
      supabase = await connectSupabase({ ...auth.supabase, onSession: onSupabase });
      $('supabase-form').hidden = false;
      if (supabase.linkError) notice(supabase.linkError);
    } catch (err) {
      notice(`Could not load Supabase sign-in (${err.message}).`);
    }
  }

  return {
    start,
    /** The token for the next request, or null when signed out; a dev or pasted one past its end signs out. */
    async getToken() {
      if (!current) return null;
      if (current.method === 'supabase') return supabase ? supabase.token() : null;
      return expired() ? null : current.token;
    },
  };
}
