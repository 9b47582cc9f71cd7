import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { timingSafeEqual } from 'node:crypto';
import { MACHINE_TOKEN_CLAIM } from '../common/machine-token';

export type TokenCheck = { ok: true; expiresAt: number } | { ok: false; reason: string };
/** What a token is presented for: `/control/*` and the health details, or `/ws`. */
export type TokenUse = 'control' | 'stream';
export type TokenVerifier = (token: string, use: TokenUse) => Promise<TokenCheck>;

/** Longest lifetime (exp − iat) of a control or stream token; the worker and the gateway mint 60 s. */
export const MAX_ACCESS_TOKEN_SECONDS = 5 * 60;
/** A renewed user token handed to /control/credentials may expire at most this far ahead. */
export const MAX_HANDED_TOKEN_SECONDS = 24 * 3600;
/** How far a token's `iat` may be ahead of this machine's clock. */
const CLOCK_SKEW_SECONDS = 60;

/**
 * Whether verified claims may be used for `use`:
 * - `control`: only a token with `purpose: "control"` (minted by the worker with the machine key);
 * - `stream`: a token with `purpose: "stream"` (minted by the API gateway), or a user's own access
 *   token (no `purpose`, role `authenticated`, not a machine's user token);
 * - a `purpose` token lives at most MAX_ACCESS_TOKEN_SECONDS and is not issued in the future.
 * Returns the reason it may not, or null.
 */
export function tokenUseError(claims: JWTPayload, use: TokenUse, nowMs: number): string | null {
  const purpose = claims.purpose;
  if (purpose === undefined && use === 'stream') {
    if (claims.role !== 'authenticated') return 'not a stream token or a user access token';
    if (claims[MACHINE_TOKEN_CLAIM] !== undefined) return 'a machine’s user token is not accepted here';
    return null;
  }
  if (purpose !== use)
    return `not a ${use} token (purpose ${purpose === undefined ? 'missing' : JSON.stringify(purpose)})`;
  if (typeof claims.iat !== 'number') return 'no iat claim';
  const lifetime = claims.exp! - claims.iat;
  if (lifetime > MAX_ACCESS_TOKEN_SECONDS)
    return `lifetime ${lifetime} s is over ${MAX_ACCESS_TOKEN_SECONDS} s (exp − iat)`;
  if (claims.iat * 1000 > nowMs + CLOCK_SKEW_SECONDS * 1000) return 'issued in the future (iat)';
  return null;
}

const joseReasons: Record<string, string> = {
  ERR_JWT_EXPIRED: 'token expired (exp)',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad signature (not this machine’s key)',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'a required claim is missing or invalid',
  ERR_JWS_INVALID: 'not a JWT',
  ERR_JWT_INVALID: 'not a JWT',
  ERR_JOSE_ALG_NOT_ALLOWED: 'algorithm not allowed',
};

/**
 * Accepts a JWT only when it is signed by the key that signs this machine's tokens (HS256: the
 * machine key the worker hands in as TOKEN_VERIFY_SECRET; or the Supabase project's JWKS), is not
 * expired, its `sub` is this machine's user, and it is meant for `use` (tokenUseError). In
 * production the machine only needs the public JWKS or its own machine key, never the project's
 * JWT secret.
 */
export function createTokenVerifier(opts: { userId: string; secret?: string; supabaseUrl?: string }): TokenVerifier {
  let key: Uint8Array | JWTVerifyGetKey;
  if (opts.secret) key = new TextEncoder().encode(opts.secret);
  else if (opts.supabaseUrl) key = createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', opts.supabaseUrl));
  else throw new Error('a token verifier needs TOKEN_VERIFY_SECRET or SUPABASE_URL');
  const algorithms = opts.secret ? ['HS256'] : ['RS256', 'ES256'];
  return async (token, use) => {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, { algorithms, requiredClaims: ['exp', 'sub'] });
      if (payload.sub !== opts.userId) return { ok: false, reason: 'token is for another user' };
      if (payload.role !== undefined && payload.role !== 'authenticated') return { ok: false, reason: 'wrong role' };
      const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (aud.length > 0 && !aud.includes('authenticated')) return { ok: false, reason: 'wrong audience' };
      const misuse = tokenUseError(payload, use, Date.now());
      if (misuse) return { ok: false, reason: misuse };
      return { ok: true, expiresAt: payload.exp! * 1000 };
    } catch (err) {
      const code = (err as { code?: string }).code;
      return { ok: false, reason: (code && joseReasons[code]) ?? code ?? 'invalid token' };
    }
  };
}

/** `Authorization: Bearer x`, else the browser form `Sec-WebSocket-Protocol: bearer, x`. */
export function bearerFrom(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim() || undefined;
  const proto = headers['sec-websocket-protocol'];
  if (typeof proto === 'string') {
    const parts = proto.split(',').map((p) => p.trim());
    if (parts[0]?.toLowerCase() === 'bearer' && parts[1]) return parts[1];
  }
  return undefined;
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Reads `exp` without verifying (for our own USER_TOKEN, to report its expiry in /health). */
export function unverifiedExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A renewed user token handed in by the (already authenticated) worker. Its signature is by the
 * project's JWT secret, which a machine never holds, so only its claims can be checked here; the
 * store (PostgREST) verifies the signature on every use. Its expiry is bounded
 * (MAX_HANDED_TOKEN_SECONDS): a leaked control token cannot install a token good until 2100.
 */
export function checkHandedUserToken(token: string, userId: string, now: number): TokenCheck {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    if (payload.sub !== userId) return { ok: false, reason: 'token is for another user' };
    if (payload.role !== 'authenticated') return { ok: false, reason: 'wrong role' };
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= now) return { ok: false, reason: 'token expired' };
    if (payload.exp * 1000 > now + MAX_HANDED_TOKEN_SECONDS * 1000)
      return { ok: false, reason: `expires more than ${MAX_HANDED_TOKEN_SECONDS / 3600} h ahead (exp ${payload.exp})` };
    return { ok: true, expiresAt: payload.exp * 1000 };
  } catch {
    return { ok: false, reason: 'not a JWT' };
  }
}
