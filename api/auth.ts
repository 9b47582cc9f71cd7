import {
  createRemoteJWKSet,
  jwtVerify,
  SignJWT,
  type JWTHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { FastifyRequest } from 'fastify';
import { MACHINE_TOKEN_CLAIM, MACHINE_TOKEN_ISSUER } from '../common/machine-token';
import { HttpProblem } from './problem';

export interface AuthenticatedUser {
  id: string;
  /** When the access token expires (ms since the epoch): a stream opened with it closes then. */
  expiresAt: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on authenticated routes: the token's `sub`, the only source of the user id. */
    user?: AuthenticatedUser;
  }
}

export type TokenVerifier = (token: string) => Promise<AuthenticatedUser>;

const AUDIENCE = 'authenticated';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Supabase access tokens: HS256 with the project's JWT secret (legacy and local), or the project's
 * asymmetric keys (RS256/ES256) from `<SUPABASE_URL>/auth/v1/.well-known/jwks.json`. The key is
 * chosen by the token's `alg` and each kind only ever verifies with its own key, so a token cannot
 * pass an RS256 public key off as an HMAC secret. Audience `authenticated`, `exp` required.
 */
export function createTokenVerifier(opts: {
  jwtSecret: string;
  supabaseUrl?: string;
  /** The longest lifetime (exp − iat) accepted, in seconds; default one day. */
  maxLifetimeSeconds?: number;
}): TokenVerifier {
  const maxLifetime = opts.maxLifetimeSeconds ?? 86_400;
  // Supabase Auth issues `<SUPABASE_URL>/auth/v1`; checked only when we know the project.
  const issuer = opts.supabaseUrl ? new URL('/auth/v1', opts.supabaseUrl).toString().replace(/\/$/, '') : undefined;
  const secret = new TextEncoder().encode(opts.jwtSecret);
  const jwks: JWTVerifyGetKey | undefined = opts.supabaseUrl
    ? createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', opts.supabaseUrl))
    : undefined;
  const algorithms = ['HS256', ...(jwks ? ['RS256', 'ES256'] : [])];
  const key = async (header: JWTHeaderParameters, token: Parameters<JWTVerifyGetKey>[1]) => {
    if (header.alg === 'HS256') return secret;
    if (jwks) return jwks(header, token);
    throw new Error(`alg ${header.alg} is not accepted`);
  };
  const refuse = (why: string) =>
    new HttpProblem(401, `invalid access token: ${why}`, {
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    });
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms,
        audience: AUDIENCE,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      throw refuse(describeJoseError(err));
    }
    const { sub, exp, iat, role, iss } = payload;
    // The user id names a workflow and rows: only a UUID (what Supabase issues) is accepted.
    if (!sub || !UUID.test(sub)) throw refuse('sub is not a user id');
    // A user's own login only: not the anon or service key (both are JWTs), not a machine's token.
    if (role !== 'authenticated') throw refuse(`role ${typeof role === 'string' ? role : 'missing'} is not a user's`);
    if (payload[MACHINE_TOKEN_CLAIM] !== undefined || iss === MACHINE_TOKEN_ISSUER)
      throw refuse('a token minted for a machine is not a login');
    if (issuer && iss !== issuer)
      throw refuse(`issuer ${typeof iss === 'string' ? iss : 'missing'} is not this project's`);
    const lifetime = exp! - (typeof iat === 'number' ? iat : Math.floor(Date.now() / 1000));
    if (lifetime > maxLifetime) throw refuse(`lifetime ${lifetime} s is longer than the ${maxLifetime} s accepted`);
    return { id: sub.toLowerCase(), expiresAt: exp! * 1000 };
  };
}

function describeJoseError(err: unknown): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return (err as Error).message; // names the claim, e.g. unexpected "aud" claim value
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'signing algorithm not accepted';
    default:
      return 'not a valid JWT';
  }
}

/**
 * The bearer token of a request: `Authorization: Bearer <jwt>`, or for browsers opening a WebSocket
 * (which cannot set headers) `Sec-WebSocket-Protocol: bearer, <jwt>`.
 */
export function bearerToken(req: FastifyRequest, allowSubprotocol: boolean): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m?.[1];
  }
  const proto = req.headers['sec-websocket-protocol'];
  if (allowSubprotocol && typeof proto === 'string') {
    const [first, second] = proto.split(',').map((p) => p.trim());
    if (first?.toLowerCase() === 'bearer' && second) return second;
  }
  return undefined;
}

/** An access token like Supabase's, for local mode and tests (HS256, aud `authenticated`). */
export async function mintAccessToken(opts: {
  jwtSecret: string;
  userId: string;
  ttlSeconds?: number;
  audience?: string;
  /** Extra claims (tests: `role`, `iss`, a machine marker). */
  claims?: Record<string, unknown>;
}): Promise<string> {
  return (
    new SignJWT({ role: 'authenticated', ...opts.claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(opts.userId)
      .setAudience(opts.audience ?? AUDIENCE)
      .setIssuedAt()
      // Absolute epoch seconds, so a negative ttl makes an already-expired token (tests).
      .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.ttlSeconds ?? 3600))
      .sign(new TextEncoder().encode(opts.jwtSecret))
  );
}
