import { randomBytes, randomInt } from 'node:crypto';
import { AuthError, type StandInUser } from './sessions';

/**
 * `POST /otp` for an email: one sign-in link (and its 6-digit code) per request, "sent" to an
 * in-memory outbox instead of a mail server. Each lives an hour and works once, as GoTrue's do.
 */

/** One "sent" email: what a test opens instead of a mailbox. */
export interface OutboxMessage {
  to: string;
  subject: string;
  text: string;
  /** `<url>/auth/v1/verify?token=…&type=magiclink&redirect_to=…`: what the email's button opens. */
  link: string;
  /** The same sign-in as a code, for `verifyOtp({ email, token, type: 'email' })`. */
  otp: string;
  sentAt: Date;
}

interface Pending {
  userId: string;
  email: string;
  otp: string;
  redirectTo: string;
  expiresAt: number;
  used: boolean;
}

const LIFETIME_MS = 3600_000;

export function createMagicLinks(opts: { authUrl: () => string }) {
  const outbox: OutboxMessage[] = [];
  const byHash = new Map<string, Pending>();

  return {
    outbox,

    /** Makes the link and code and puts the email in the outbox. */
    send(user: StandInUser, redirectTo: string): OutboxMessage {
      const hash = randomBytes(28).toString('hex');
      const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
      byHash.set(hash, {
        userId: user.id,
        email: user.email,
        otp,
        redirectTo,
        expiresAt: Date.now() + LIFETIME_MS,
        used: false,
      });
      const link = `${opts.authUrl()}/verify?${new URLSearchParams({ token: hash, type: 'magiclink', redirect_to: redirectTo })}`;
      const message: OutboxMessage = {
        to: user.email,
        subject: 'Your Magic Link',
        text: `Follow this link to login:\n${link}\n\nAlternatively, enter the code: ${otp}`,
        link,
        otp,
        sentAt: new Date(),
      };
      outbox.push(message);
      return message;
    },

    /**
     * Uses a link (its token hash) or a code (with the email) once; GoTrue's `otp_expired` otherwise.
     * Returns the user id and the redirect the link was made for.
     */
    redeem(by: { tokenHash: string } | { email: string; otp: string }): { userId: string; redirectTo: string } {
      let found: Pending | undefined;
      if ('tokenHash' in by) found = byHash.get(by.tokenHash);
      else
        found = [...byHash.values()].find(
          (p) => !p.used && p.otp === by.otp && p.email.toLowerCase() === by.email.toLowerCase(),
        );
      if (!found || found.used || found.expiresAt < Date.now())
        throw new AuthError(403, 'otp_expired', 'Email link is invalid or has expired');
      found.used = true;
      return { userId: found.userId, redirectTo: found.redirectTo };
    },
  };
}
