import { randomUUID } from 'node:crypto';
import { signWebhook } from '../../api/webhooks';
import { base, call, claimsOf, detailOf, fail, pass, type CheckResult, type SmokeTarget } from './http';

/**
 * The smoke test's checks of a deployment from outside (scripts/smoke.ts runs them in order). Each
 * returns ✓/✗ results with a sentence that says what is wrong and where to look; none throws.
 */

const unreachable = (t: SmokeTarget, path: string, error: string) =>
  `cannot reach ${base(t)}${path} (${error}): is the app deployed and this URL right? ` +
  '(fly status -c fly.control-plane.toml; fly logs -c fly.control-plane.toml)';

/** `GET /healthz`: the API answers, and reaches Temporal and its store. */
export async function checkHealthz(t: SmokeTarget): Promise<CheckResult[]> {
  const a = await call(t, 'GET', '/healthz');
  if (a.status === 0) return [fail('healthz', unreachable(t, '/healthz', a.error ?? 'no answer'))];
  if (a.status !== 200 || a.json?.ok !== true)
    return [fail('healthz', `GET /healthz answered HTTP ${a.status} (${detailOf(a)}): the API is not healthy`)];
  const ok = (k: 'temporal' | 'store') => (a.json?.[k] as { ok?: unknown } | undefined)?.ok === true;
  const why = 'the reason is in the API log ("healthz: dependency unreachable")';
  return [
    pass('healthz', `the API answers GET /healthz at ${base(t)}`),
    ok('temporal')
      ? pass('temporal', 'the API reaches Temporal')
      : fail(
          'temporal',
          'the API cannot reach Temporal: check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_API_KEY ' +
            `(or the mTLS files) in the app's secrets; ${why}`,
        ),
    ok('store')
      ? pass('store', 'the API reaches its store (Supabase or Postgres)')
      : fail(
          'store',
          'the API cannot read its store: check SUPABASE_URL and SUPABASE_SERVICE_KEY (or DATABASE_URL), ' +
            `and that the migrations are applied (supabase db push); ${why}`,
        ),
  ];
}

/** `GET /openapi.json`: the API describes itself (and so is this code, not something else on the URL). */
export async function checkOpenApi(t: SmokeTarget): Promise<CheckResult> {
  const a = await call(t, 'GET', '/openapi.json');
  if (a.status === 0) return fail('openapi', unreachable(t, '/openapi.json', a.error ?? 'no answer'));
  const paths = a.json?.paths as Record<string, unknown> | undefined;
  if (a.status !== 200 || typeof a.json?.openapi !== 'string' || !paths?.['/v1/machines'])
    return fail(
      'openapi',
      `GET /openapi.json answered HTTP ${a.status} without the Cloud Execution API's description: ` +
        'is this URL the control plane (and not the runtime app or another service)?',
    );
  return pass(
    'openapi',
    `GET /openapi.json describes the API (OpenAPI ${a.json.openapi}, ${Object.keys(paths).length} paths)`,
  );
}

export interface TokenCheck {
  result: CheckResult;
  /** The user's machine state before the smoke test did anything (undefined: never had a machine). */
  state?: string;
  userId?: string;
}

/** `GET /v1/machines/me` with the token: 200 (has a machine) or 404 (never had one) mean the API accepted it. */
export async function checkToken(t: SmokeTarget): Promise<TokenCheck> {
  const token = t.token ?? '';
  const claims = claimsOf(token);
  if (!claims)
    return { result: fail('token', 'the token is not a JWT (three base64url parts): pass a Supabase access token') };
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined;
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now())
    return {
      result: fail('token', `the token expired at ${new Date(claims.exp * 1000).toISOString()}: get a fresh one`),
    };
  const a = await call(t, 'GET', '/v1/machines/me', { token });
  const who = sub ? `user ${sub}` : 'the token';
  if (a.status === 200) {
    const state = typeof a.json?.state === 'string' ? a.json.state : 'unknown';
    return {
      result: pass('token', `the API accepted the token of ${who}; its machine is ${state}`),
      state,
      userId: sub,
    };
  }
  if (a.status === 404)
    return { result: pass('token', `the API accepted the token of ${who}, who has no machine yet`), userId: sub };
  if (a.status === 401)
    return {
      result: fail(
        'token',
        `the API refused the token of ${who} (401: ${detailOf(a)}). It is expired, signed with another ` +
          "secret than the API's SUPABASE_JWT_SECRET (or by another Supabase project), or lives longer than " +
          'API_MAX_TOKEN_LIFETIME',
      ),
    };
  if (a.status === 0) return { result: fail('token', unreachable(t, '/v1/machines/me', a.error ?? 'no answer')) };
  return { result: fail('token', `GET /v1/machines/me answered HTTP ${a.status}: ${detailOf(a)}`) };
}

/**
 * A signed no-op billing event: `payment.recovered` for a user id nobody has, which the API records
 * (webhook_events, id `smoke-…`) and ignores ("no such user"); no workflow is signalled.
 */
export async function checkWebhook(t: SmokeTarget, secret: string): Promise<CheckResult> {
  const event = {
    id: `smoke-${new Date().toISOString()}-${randomUUID().slice(0, 8)}`,
    type: 'payment.recovered',
    userId: randomUUID(),
    occurredAt: new Date().toISOString(),
  };
  const body = JSON.stringify(event);
  const a = await call(t, 'POST', '/v1/webhooks/billing', {
    body,
    headers: { 'x-signature': signWebhook(secret, body) },
  });
  if (a.status === 200 && a.json?.status === 'ignored')
    return pass('webhook', `the billing webhook took a signed no-op event (${event.id}: ${String(a.json.detail)})`);
  if (a.status === 401)
    return fail(
      'webhook',
      `the API refused the signature (401: ${detailOf(a)}): --webhook-secret is not the API's WEBHOOK_SECRET, ` +
        "or this computer's clock is more than 5 minutes off",
    );
  if (a.status === 503)
    return fail('webhook', 'WEBHOOK_SECRET is not set on the API: billing webhooks answer 503 until it is');
  if (a.status === 0) return fail('webhook', unreachable(t, '/v1/webhooks/billing', a.error ?? 'no answer'));
  return fail('webhook', `POST /v1/webhooks/billing answered HTTP ${a.status}: ${detailOf(a)}`);
}
