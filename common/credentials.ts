import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { MACHINE_TOKEN_CLAIM, MACHINE_TOKEN_ISSUER } from './machine-token';

/**
 * Credentials a user's machine holds. Never the service-role key, never the project's JWT secret:
 *
 * - the **user token**: a short-lived Supabase access token for that user only (role `authenticated`,
 *   `sub` = user id), signed with `SUPABASE_JWT_SECRET`. PostgREST verifies it and RLS confines the
 *   machine to its user's rows. The worker renews it before it expires.
 * - the **machine key**: HMAC-SHA256(`SUPABASE_JWT_SECRET`, label + user id). The worker and the API
 *   derive it without storing anything; the machine verifies with it the short tokens the worker
 *   (control calls) and the API gateway (stream) present. It can sign nothing that Supabase accepts.
 */
const MACHINE_KEY_LABEL = 'cloud-execution/machine-key/v1/';

export function deriveMachineKey(jwtSecret: string, userId: string): string {
  return createHmac('sha256', jwtSecret)
    .update(MACHINE_KEY_LABEL + userId)
    .digest('base64url');
}

export async function mintUserToken(opts: { jwtSecret: string; userId: string; ttlSeconds: number; now?: Date }) {
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const exp = iat + opts.ttlSeconds;
  // Marked as a machine's (issuer and claim): RLS treats it as the user, the API refuses it as a login.
  const token = await new SignJWT({ role: 'authenticated', [MACHINE_TOKEN_CLAIM]: true })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(MACHINE_TOKEN_ISSUER)
    .setSubject(opts.userId)
    .setAudience('authenticated')
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(opts.jwtSecret));
  return { token, expiresAt: new Date(exp * 1000) };
}

/** A short token the machine accepts from the worker and the API gateway (verified with its machine key). */
export async function mintMachineAccessToken(opts: {
  jwtSecret: string;
  userId: string;
  ttlSeconds?: number;
  purpose: 'control' | 'stream';
}) {
  return new SignJWT({ purpose: opts.purpose })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.userId)
    .setIssuedAt()
    .setExpirationTime(`${opts.ttlSeconds ?? 60}s`)
    .sign(new TextEncoder().encode(deriveMachineKey(opts.jwtSecret, opts.userId)));
}
