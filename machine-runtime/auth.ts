import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { timingSafeEqual } from 'node:crypto';

export type TokenCheck = { ok: true; expiresAt: number } | { ok: false; reason: string };
export type TokenVerifier = (token: string) => Promise<TokenCheck>;

/**
 * Accepts a JWT only when it is signed by the key that signs this user's tokens (HS256 shared
 * secret, or the Supabase project's JWKS), is not expired, and its `sub` is this machine's user.
 * The machine never holds the Supabase JWT secret of the whole project unless it is handed
 * `TOKEN_VERIFY_SECRET` (local mode); in production it only needs the public JWKS.
 */
export function createTokenVerifier(opts: { userId: string; secret?: string; supabaseUrl?: string }): TokenVerifier {
  let key: Uint8Array | JWTVerifyGetKey;
  if (opts.secret) key = new TextEncoder().encode(opts.secret);
  else if (opts.supabaseUrl) key = createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', opts.supabaseUrl));
  else throw new Error('a token verifier needs TOKEN_VERIFY_SECRET or SUPABASE_URL');
  const algorithms = opts.secret ? ['HS256'] : ['RS256', 'ES256'];
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, { algorithms, requiredClaims: ['exp', 'sub'] });
      if (payload.sub !== opts.userId) return { ok: false, reason: 'token is for another user' };
      if (payload.role !== undefined && payload.role !== 'authenticated') return { ok: false, reason: 'wrong role' };
      const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (aud.length > 0 && !aud.includes('authenticated')) return { ok: false, reason: 'wrong audience' };
      return { ok: true, expiresAt: payload.exp! * 1000 };
    } catch (err) {
      return { ok: false, reason: (err as { code?: string }).code ?? 'invalid token' };
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
 * store (PostgREST) verifies the signature on every use.
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
    return { ok: true, expiresAt: payload.exp * 1000 };
  } catch {
    return { ok: false, reason: 'not a JWT' };
  }
}
