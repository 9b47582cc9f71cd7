import type { FastifyInstance, FastifyRequest } from 'fastify';
import { decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';
import { deriveMachineKey } from '../common/credentials';
import type { AiNoteWriter } from '../common/ai-note';
import { MACHINE_API_PURPOSE } from '../common/machine-api-token';
import type { UserStore } from '../store/types';
import { HttpProblem, zodErrors } from './problem';

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

/** A signal as a machine sends it (dates as ISO strings on the wire). */
const machineSignalSchema = z.strictObject({
  traderId: z.uuid(),
  symbol: z.string().regex(/^[A-Z0-9]{2,20}$/),
  interval: z.string().regex(/^\d{1,2}[mhdwM]$/),
  candleOpenAt: z.coerce.date(),
  firedAt: z.coerce.date().optional(),
  payload: z.record(z.string(), z.unknown()).refine((p) => JSON.stringify(p).length <= 16_384, {
    message: 'payload over 16 KB',
  }),
});

/** Bounds above the runtime's own (≤ 1,000 streams, the API's trader limit): a bad machine stores no megabytes. */
const MAX_CHECKPOINT_STREAMS = 2_000;
const MAX_CHECKPOINT_TRADERS = 1_000;
const atMost = (n: number) => (r: Record<string, unknown>) => Object.keys(r).length <= n;

/** A runtime checkpoint as a machine writes it (machine-runtime/checkpoint.ts): open times and updatedAt in ms. */
export const machineCheckpointSchema = z.strictObject({
  machineId: z.string().min(1).max(100).nullable(),
  streams: z
    .record(
      z.string().regex(/^[A-Z0-9]{2,20}\|\d{1,2}[smhdwM]$/, 'a stream key SYMBOL|interval'),
      z.number().int().min(0),
    )
    .refine(atMost(MAX_CHECKPOINT_STREAMS), { message: `at most ${MAX_CHECKPOINT_STREAMS} streams` }),
  traders: z
    .record(z.uuid(), z.number().int().min(0))
    .refine(atMost(MAX_CHECKPOINT_TRADERS), { message: `at most ${MAX_CHECKPOINT_TRADERS} traders` }),
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
 * `/v1/machine/*`: what a user's machine may do through the control plane, as that user, with its
 * own machine key and no database credential: read its traders, write its signals (RLS applies them
 * as the user: only for its own traders), read its machine row, read and write its runtime
 * checkpoint, and ask for an AI note on a signal
 * (the Gemini key stays here), rate-limited per user.
 */
export async function registerMachineApi(
  app: FastifyInstance,
  deps: {
    jwtSecret: string;
    writeNote?: AiNoteWriter;
    /** Notes per user per minute. */
    notesPerMinute: number;
    /** The user's store under RLS (Postgres: acting as the user); absent with Supabase, whose REST machines use. */
    userStore?: (userId: string) => UserStore;
  },
) {
  const verify = createMachineVerifier(deps.jwtSecret);
  const machineUser = new WeakMap<FastifyRequest, string>();
  const storeOf = (req: FastifyRequest): UserStore => {
    if (!deps.userStore)
      throw new HttpProblem(501, 'this deployment serves machines through Supabase REST, not the machine API');
    return deps.userStore(machineUser.get(req)!);
  };
  const asMachine = { onRequest: async (req: FastifyRequest) => void machineUser.set(req, await verify(req)) };
  app.get('/v1/machine/traders', asMachine, async (req) => {
    const q = z.object({ enabledOnly: z.enum(['true', 'false']).optional() }).safeParse(req.query);
    if (!q.success) throw new HttpProblem(400, 'enabledOnly must be true or false', { errors: zodErrors(q.error) });
    return storeOf(req).listTraders({ enabledOnly: q.data.enabledOnly === 'true' });
  });
  app.post('/v1/machine/signals', asMachine, async (req) => {
    const body = machineSignalSchema.safeParse(req.body);
    if (!body.success) throw new HttpProblem(400, 'not a valid signal', { errors: zodErrors(body.error) });
    try {
      return await storeOf(req).insertTradeSignal(body.data);
    } catch (err) {
      // RLS (42501) or a trader that is gone (23503): not this machine's to write.
      const code = (err as { code?: string }).code;
      if (code === '42501' || code === '23503') throw new HttpProblem(403, 'that trader is not one of yours');
      throw err;
    }
  });
  app.get('/v1/machine/signals', asMachine, async (req) => {
    const q = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).safeParse(req.query);
    if (!q.success) throw new HttpProblem(400, 'limit must be 1..1000', { errors: zodErrors(q.error) });
    return storeOf(req).listTradeSignals({ limit: q.data.limit });
  });
  app.get('/v1/machine/machine', asMachine, async (req) => storeOf(req).getMachine());
  // Where the machine's runtime stood, so a restarted machine evaluates what it missed, once.
  app.get('/v1/machine/checkpoint', asMachine, async (req) => storeOf(req).getRuntimeCheckpoint());
  app.put('/v1/machine/checkpoint', asMachine, async (req, reply) => {
    const body = machineCheckpointSchema.safeParse(req.body);
    if (!body.success) throw new HttpProblem(400, 'not a valid runtime checkpoint', { errors: zodErrors(body.error) });
    await storeOf(req).putRuntimeCheckpoint(body.data);
    return reply.code(204).send();
  });

  // Counted in Postgres like every rate limit of the API (app.ts): one budget across all replicas.
  const perUser = app.rateLimit({
    max: deps.notesPerMinute,
    timeWindow: '1 minute',
    keyGenerator: (req) => `machine:${machineUser.get(req) ?? req.ip}`,
  });
  app.post('/v1/machine/ai-note', { ...asMachine, preHandler: perUser }, async (req) => {
    if (!deps.writeNote) throw new HttpProblem(503, 'AI notes are not configured on this server (GEMINI_API_KEY)');
    const body = aiNoteRequestSchema.safeParse(req.body);
    if (!body.success) throw new HttpProblem(400, 'not a valid AI note request', { errors: zodErrors(body.error) });
    try {
      return { note: await deps.writeNote(body.data) };
    } catch (err) {
      req.log.warn({ err, userId: machineUser.get(req) }, 'ai note failed');
      throw new HttpProblem(502, 'the AI model did not answer; the signal is kept without a note');
    }
  });
}
