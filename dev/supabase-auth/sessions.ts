import { randomBytes, randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

/**
 * Supabase Auth's (GoTrue's) sessions, in memory: a sign-in opens a session; each session has one
 * active refresh token, which a refresh rotates (the used one is revoked). Reusing a revoked token
 * within `reuseIntervalMs` answers with the session's active token (two tabs refreshing at once);
 * later, it is GoTrue's "Already Used" and the whole session is revoked, as a stolen token would be.
 */

export interface StandInUser {
  id: string;
  email: string;
  password: string;
}

/** An error GoTrue would answer: HTTP status, its `error_code` and the sentence. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The session JSON of `/token` and `POST /verify` (and, as a fragment, of the magic link's redirect). */
export interface SessionGrant {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: ReturnType<typeof userJson>;
}

type Method = 'password' | 'otp' | 'magiclink';
interface Session {
  id: string;
  userId: string;
  method: Method;
  revoked: boolean;
  active: string;
}
interface RefreshToken {
  sessionId: string;
  revokedAt?: number;
}

const AUDIENCE = 'authenticated';
const created = new Date().toISOString();

/** The user object GoTrue returns (`GET /user`, `session.user`): the fields supabase-js and apps read. */
export function userJson(user: StandInUser, lastSignInAt?: string) {
  return {
    id: user.id,
    aud: AUDIENCE,
    role: 'authenticated',
    email: user.email,
    email_confirmed_at: created,
    phone: '',
    confirmed_at: created,
    last_sign_in_at: lastSignInAt ?? created,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    identities: [],
    created_at: created,
    updated_at: created,
    is_anonymous: false,
  };
}

export function createSessions(opts: {
  jwtSecret: string;
  /** `<url>/auth/v1`: known once the server listens. */
  issuer: () => string;
  users: () => readonly StandInUser[];
  accessTokenTtlSeconds: () => number;
  reuseIntervalMs: number;
}) {
  const key = new TextEncoder().encode(opts.jwtSecret);
  const sessions = new Map<string, Session>();
  const refreshTokens = new Map<string, RefreshToken>();
  const userById = (id: string) => opts.users().find((u) => u.id === id);

  const newRefreshToken = (sessionId: string) => {
    const token = randomBytes(18).toString('base64url');
    refreshTokens.set(token, { sessionId });
    return token;
  };

  async function grant(session: Session): Promise<SessionGrant> {
    const user = userById(session.userId);
    if (!user) throw new AuthError(404, 'user_not_found', 'User from sub claim in JWT does not exist');
    const ttl = opts.accessTokenTtlSeconds();
    const iat = Math.floor(Date.now() / 1000);
    // The claims of a Supabase access token (what the API and PostgREST read: sub, role, aud, exp).
    const accessToken = await new SignJWT({
      email: user.email,
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {},
      role: 'authenticated',
      aal: 'aal1',
      amr: [{ method: session.method, timestamp: iat }],
      session_id: session.id,
      is_anonymous: false,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(opts.issuer())
      .setSubject(user.id)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .sign(key);
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: ttl,
      expires_at: iat + ttl,
      refresh_token: session.active,
      user: userJson(user, new Date().toISOString()),
    };
  }

  return {
    /** A new session for the user (a password or magic-link sign-in). */
    open(user: StandInUser, method: Method): Promise<SessionGrant> {
      const id = randomUUID();
      const session: Session = { id, userId: user.id, method, revoked: false, active: '' };
      session.active = newRefreshToken(id);
      sessions.set(id, session);
      return grant(session);
    },

    /** `grant_type=refresh_token`: rotates the refresh token (GoTrue's error codes and sentences). */
    async refresh(token: string): Promise<SessionGrant> {
      const record = refreshTokens.get(token);
      const session = record && sessions.get(record.sessionId);
      if (!record || !session)
        throw new AuthError(400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      if (session.revoked) throw new AuthError(400, 'session_expired', 'Invalid Refresh Token: Session Expired');
      if (record.revokedAt !== undefined) {
        if (Date.now() - record.revokedAt <= opts.reuseIntervalMs) return grant(session);
        session.revoked = true;
        throw new AuthError(400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used');
      }
      record.revokedAt = Date.now();
      session.active = newRefreshToken(session.id);
      return grant(session);
    },

    /** The user and session of a valid access token whose session is still open (`GET /user`, `/logout`). */
    async verify(accessToken: string): Promise<{ user: StandInUser; sessionId: string }> {
      let claims;
      try {
        ({ payload: claims } = await jwtVerify(accessToken, key, { audience: AUDIENCE, issuer: opts.issuer() }));
      } catch (err) {
        throw new AuthError(
          403,
          'bad_jwt',
          `invalid JWT: unable to parse or verify signature, ${(err as Error).message}`,
        );
      }
      const session = sessions.get(String(claims.session_id));
      if (!session || session.revoked)
        throw new AuthError(403, 'session_not_found', 'Session from session_id claim in JWT does not exist');
      const user = userById(String(claims.sub));
      if (!user) throw new AuthError(403, 'user_not_found', 'User from sub claim in JWT does not exist');
      return { user, sessionId: session.id };
    },

    /** `/logout?scope=`: `local` this session, `others` the user's other sessions, `global` all of them. */
    logout(userId: string, sessionId: string, scope: 'global' | 'local' | 'others') {
      for (const s of sessions.values()) {
        if (s.userId !== userId) continue;
        if (scope === 'global' || (scope === 'local' ? s.id === sessionId : s.id !== sessionId)) s.revoked = true;
      }
    },
  };
}
export type Sessions = ReturnType<typeof createSessions>;
