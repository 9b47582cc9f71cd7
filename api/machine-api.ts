import type { FastifyInstance, FastifyRequest } from 'fastify';
import { decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';
import { deriveMachineKey } from '../activities/credentials';
import type { AiNoteWriter } from '../common/ai-note';
import { HttpProblem, zodErrors } from './problem';

/** The `purpose` of the tokens machines sign for this API (machine-runtime/gemini.ts). */
export const MACHINE_API_PURPOSE = 'machine-api';
const MAX_TOKEN_SECONDS = 300;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const aiNoteRequestSchema = z.strictObject({
  traderName: z.string().min(1).max(200),
  symbol: z.string().regex(/^[A-Z0-9]{2,20}$/),
  interval: z.string().regex(/^\d{1,2}[mhdwM]$/),
  openTime: z.number().int().nonnegative(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number().nonnegative(),
  values: z.record(z.string().max(100), z.number().nullable()).refine((v) => Object.keys(v).length <= 50, {
    message: 'at most 50 values',
  }),
});

/**
 * Which user's machine calls: a token signed with that user's machine key (HMAC of the JWT secret and
 * the user id, derived here, never stored), `purpose: machine-api`, at most 5 minutes long. The `sub`
 * picks the key, so a machine can only ever sign as its own user; a user's login, a stream or control
 * token (other purposes) are refused.
 */
export function createMachineVerifier(jwtSecret: string) {
  return async (req: FastifyRequest): Promise<string> => {
    const auth = req.headers.authorization;
    const token = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
    if (!token) throw new HttpProblem(401, 'missing bearer token: sign one with the machine key');
    let sub: unknown;
    try {
      sub = decodeJwt(token).sub;
    } catch {
      throw new HttpProblem(401, 'invalid machine token: not a JWT');
    }
    if (typeof sub !== 'string' || !UUID.test(sub))
      throw new HttpProblem(401, 'invalid machine token: sub is not a user id');
    try {
      const key = new TextEncoder().encode(deriveMachineKey(jwtSecret, sub));
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'sub'] });
      if (payload.purpose !== MACHINE_API_PURPOSE) throw new Error(`purpose ${String(payload.purpose)}`);
      if (payload.exp! - payload.iat! > MAX_TOKEN_SECONDS) throw new Error('lifetime over 5 minutes');
    } catch (err) {
      throw new HttpProblem(401, `invalid machine token: ${(err as Error).message}`);
    }
    return sub.toLowerCase();
  };
}

/**
 * `/v1/machine/*`: what a user's machine may ask of the control plane, as that user. Today: an AI
 * note on a signal (the Gemini key stays here), rate-limited per user.
 */
export async function registerMachineApi(
  app: FastifyInstance,
  deps: {
    jwtSecret: string;
    writeNote?: AiNoteWriter;
    /** Notes per user per minute. */
    notesPerMinute: number;
  },
) {
  const verify = createMachineVerifier(deps.jwtSecret);
  const machineUser = new WeakMap<FastifyRequest, string>();
  const perUser = app.rateLimit({
    max: deps.notesPerMinute,
    timeWindow: '1 minute',
    keyGenerator: (req) => `machine:${machineUser.get(req) ?? req.ip}`,
  });
  app.post(
    '/v1/machine/ai-note',
    { onRequest: async (req) => void machineUser.set(req, await verify(req)), preHandler: perUser },
    async (req) => {
      if (!deps.writeNote) throw new HttpProblem(503, 'AI notes are not configured on this server (GEMINI_API_KEY)');
      const body = aiNoteRequestSchema.safeParse(req.body);
      if (!body.success) throw new HttpProblem(400, 'not a valid AI note request', { errors: zodErrors(body.error) });
      try {
        return { note: await deps.writeNote(body.data) };
      } catch (err) {
        req.log.warn({ err, userId: machineUser.get(req) }, 'ai note failed');
        throw new HttpProblem(502, 'the AI model did not answer; the signal is kept without a note');
      }
    },
  );
}
