/* global window, location, history */
// Supabase Auth in the page, as the screener app signs in: supabase-js with its own session storage,
// `autoRefreshToken` (it renews the access token before it expires) and the magic link's session read
// from the URL it redirects to (the implicit flow: `#access_token=…`). supabase-js is a second bundle
// (./supabase-auth.js, bundle.ts), fetched only here, only when the API names a project.

const MODULE_PATH = '/supabase-auth.js';

/** A sentence for a supabase-js AuthError (GoTrue's `code`, else its message). */
export function authErrorText(error, url) {
  if (!error) return '';
  const code = error.code || (error.details && error.details.code);
  switch (code) {
    case 'invalid_credentials':
      return 'The email or password is not right.';
    case 'email_not_confirmed':
      return 'Confirm your email address first: follow the link in the email you got when you signed up.';
    case 'otp_disabled':
    case 'user_not_found':
      return 'There is no account with this email address.';
    case 'otp_expired':
      return 'The sign-in link has expired or was already used: ask for a new one.';
    default:
  }
  // No answer (network, CORS): supabase-js calls it retryable, status 0.
  if (error.name === 'AuthRetryableFetchError' || error.status === 0)
    return `Could not reach the sign-in service at ${new URL(url).host}; try again.`;
  return error.message || 'Signing in did not work; try again.';
}

/**
 * Loads supabase-js, opens the client and reports every session change to `onSession(event, session)`.
 * Resolves once supabase-js has read a stored session or the magic link's (`linkError` if that failed).
 */
export async function connectSupabase({ url, anonKey, onSession }) {
  // A computed path, so esbuild leaves this import to the browser instead of bundling supabase-js in.
  const { createClient } = await import(new URL(MODULE_PATH, location.href).href);
  const linkFailed = /(^#|&)error(_code)?=/.test(location.hash);
  const supabase = createClient(url, anonKey, {
    auth: { autoRefreshToken: true, persistSession: true, detectSessionInUrl: true, flowType: 'implicit' },
  });
  // Deferred: supabase-js runs listeners while it holds its session lock, and our handler asks it for
  // the session again (getToken) — from inside the lock that would wait for ever.
  supabase.auth.onAuthStateChange((event, session) => window.setTimeout(() => onSession(event, session), 0));
  const { error } = await supabase.auth.initialize();
  // A failed link leaves its error in the URL; a good one supabase-js clears itself.
  if (linkFailed) history.replaceState(history.state, '', location.pathname + location.search);
  return {
    linkError: error ? authErrorText(error, url) : '',
    /** The current access token; supabase-js renews it first when it is about to expire. */
    async token() {
      const { data } = await supabase.auth.getSession();
      return data.session ? data.session.access_token : null;
    },
    signInWithPassword: (email, password) => supabase.auth.signInWithPassword({ email, password }),
    // No sign-ups from here: an unknown address gets a sentence, not a new account.
    sendLink: (email) =>
      supabase.auth.signInWithOtp({
        email,
        options: { shouldCreateUser: false, emailRedirectTo: location.origin + location.pathname },
      }),
    // This browser only (`local`): the user's other devices stay signed in.
    signOut: () => supabase.auth.signOut({ scope: 'local' }),
  };
}
