// Shared by the provision-machine and stop-machine Edge Functions: CORS, caller verification and the
// call to the cloud execution API. The functions decide nothing about machines themselves: the API
// does, for the user named by the token, and a body `userId` is only ever compared with it.
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'npm:jose@^6.2.18';

/** The same headers as the original functions, plus the methods (browsers preflight the POST). */
export const corsHeaders: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type, x-request-id',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
};

export const STREAM_PATH = '/v1/machines/me/stream';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Env {
  apiUrl: string;
  jwtSecret?: string;
  supabaseUrl?: string;
}

export interface Caller {
  userId: string;
  token: string;
}

export const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { ...corsHeaders, 'content-type': 'application/json' } });

/** The original functions' error shape. */
export const fail = (status: number, error: string): Response => json(status, { error });

/** Read per request, so a missing variable is a clear 500 rather than a function that will not boot. */
export function readEnv(): Env | Response {
  const apiUrl = Deno.env.get('CLOUD_EXECUTION_API_URL');
  // Hosted Edge Functions are not given the JWT secret and refuse secret names starting SUPABASE_:
  // set it as CLOUD_EXECUTION_JWT_SECRET there (SUPABASE_JWT_SECRET still works locally).
  const jwtSecret = Deno.env.get('CLOUD_EXECUTION_JWT_SECRET') || Deno.env.get('SUPABASE_JWT_SECRET') || undefined;
  const supabaseUrl = Deno.env.get('SUPABASE_URL') || undefined;
  if (!apiUrl || !/^https?:\/\//.test(apiUrl))
    return fail(
      500,
      'server misconfigured: CLOUD_EXECUTION_API_URL must be the http(s) URL of the cloud execution API',
    );
  if (!jwtSecret && !supabaseUrl)
    return fail(
      500,
      'server misconfigured: set CLOUD_EXECUTION_JWT_SECRET (or SUPABASE_JWT_SECRET) or SUPABASE_URL to verify access tokens',
    );
  return { apiUrl: apiUrl.replace(/\/+$/, ''), jwtSecret, supabaseUrl };
}

/** `ws(s)://<api>/v1/machines/me/stream`: the API's gateway, never a machine's own address. */
export const streamUrl = (env: Env): string => env.apiUrl.replace(/^http/, 'ws') + STREAM_PATH;

const jwksByUrl = new Map<string, JWTVerifyGetKey>();

/**
 * Verifies the caller's Supabase access token (HS256 with the project's JWT secret, or RS256/ES256
 * with its JWKS; audience `authenticated`; `exp` and a UUID `sub` required). Each algorithm only ever
 * verifies with its own kind of key.
 */
export async function verifyCaller(req: Request, env: Env): Promise<Caller | Response> {
  const header = req.headers.get('authorization') ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) return fail(401, 'missing bearer token: sign in first (Authorization: Bearer <access token>)');
  const token = match[1];
  const options = { audience: 'authenticated', requiredClaims: ['exp', 'sub'] };
  try {
    const { alg } = decodeProtectedHeader(token);
    let sub: unknown;
    if (alg === 'HS256' && env.jwtSecret) {
      const key = new TextEncoder().encode(env.jwtSecret);
      sub = (await jwtVerify(token, key, { ...options, algorithms: ['HS256'] })).payload.sub;
    } else if ((alg === 'RS256' || alg === 'ES256') && env.supabaseUrl) {
      const url = new URL('/auth/v1/.well-known/jwks.json', env.supabaseUrl).toString();
      let jwks = jwksByUrl.get(url);
      if (!jwks) jwksByUrl.set(url, (jwks = createRemoteJWKSet(new URL(url))));
      sub = (await jwtVerify(token, jwks, { ...options, algorithms: ['RS256', 'ES256'] })).payload.sub;
    } else {
      return fail(401, `invalid access token: algorithm ${String(alg)} is not accepted`);
    }
    if (typeof sub !== 'string' || !UUID.test(sub)) return fail(401, 'invalid access token: sub is not a user id');
    return { userId: sub, token };
  } catch (err) {
    return fail(401, `invalid access token: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The JSON body as an object (an empty body is `{}`), or a 400. */
export async function readBody(req: Request): Promise<Record<string, unknown> | Response> {
  const text = await req.text();
  if (text.trim() === '') return {};
  try {
    const body: unknown = JSON.parse(text);
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // answered below
  }
  return fail(400, 'body must be a JSON object');
}

/** A `userId` in the body must be the token's user: it is checked, never acted on. */
export function refuseOtherUser(body: Record<string, unknown>, caller: Caller): Response | null {
  if (body.userId === undefined || body.userId === caller.userId) return null;
  return fail(403, 'userId does not match the signed-in user: you can only manage your own machine');
}

export type ApiResult<T> = { ok: true; status: number; data: T } | { ok: false; status: number; response: Response };

/**
 * Calls the API with the caller's own token. A problem+json answer becomes the original `{ error }`
 * with the same status (its `detail` as the message); no answer at all is a 502.
 */
export async function callApi<T>(
  env: Env,
  caller: Caller,
  req: Request,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${caller.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const requestId = req.headers.get('x-request-id');
  if (requestId) headers['x-request-id'] = requestId;
  let res: Response;
  try {
    res = await fetch(env.apiUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    console.error(`cloud execution API unreachable: ${method} ${path}: ${err instanceof Error ? err.message : err}`);
    return { ok: false, status: 502, response: fail(502, 'the cloud execution API is unreachable; try again shortly') };
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (res.ok) return { ok: true, status: res.status, data: data as T };
  const problem = (data && typeof data === 'object' ? data : {}) as {
    detail?: unknown;
    errors?: { path?: unknown; message?: unknown }[];
  };
  let detail = typeof problem.detail === 'string' ? problem.detail : `cloud execution API answered ${res.status}`;
  // A 400 names the offending fields in `errors`: keep them in the one-line message.
  if (Array.isArray(problem.errors) && problem.errors.length)
    detail += `: ${problem.errors.map((e) => `${String(e.path)}: ${String(e.message)}`).join('; ')}`;
  return { ok: false, status: res.status, response: fail(res.status, detail) };
}

/**
 * `Deno.serve` with the preflight, method check and a last-resort 500. `PORT` / `HOST` are for running
 * outside Supabase (tests, `deno run`); the Edge Runtime chooses its own address.
 */
export function serve(handler: (req: Request) => Promise<Response>): void {
  const handle = async (req: Request): Promise<Response> => {
    if (req.method === 'OPTIONS') return new Response('ok', { headers: corsHeaders });
    if (req.method !== 'POST') return fail(405, 'use POST');
    try {
      return await handler(req);
    } catch (err) {
      console.error('edge function failed', err);
      return fail(500, 'internal error');
    }
  };
  const port = Deno.env.get('PORT');
  if (port === undefined) {
    Deno.serve(handle);
    return;
  }
  Deno.serve(
    {
      port: Number(port),
      hostname: Deno.env.get('HOST') ?? '127.0.0.1',
      onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}/`),
    },
    handle,
  );
}
