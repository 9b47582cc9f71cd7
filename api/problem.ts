import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';

/** RFC 9457 problem document: the one error shape of the API. */
export const problemSchema = z.object({
  type: z.string().describe('always "about:blank": the status and title say it all'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe('what went wrong, for a person'),
  instance: z.string().optional().describe('the request path'),
  requestId: z.string().optional().describe('quote it when reporting a problem'),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type Problem = z.infer<typeof problemSchema>;

/** Thrown by handlers and hooks; the app's one error handler turns it into problem+json. */
export class HttpProblem extends Error {
  constructor(
    readonly statusCode: number,
    readonly detail: string,
    readonly extra: { errors?: Problem['errors']; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

export const problemBody = (status: number, detail: string, extra: Partial<Problem> = {}): Problem => ({
  type: 'about:blank',
  title: STATUS_CODES[status] ?? 'Error',
  status,
  detail,
  ...extra,
});

export function sendProblem(reply: FastifyReply, status: number, detail: string, extra: Partial<Problem> = {}) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send(
      problemBody(status, detail, { instance: reply.request.url.split('?')[0], requestId: reply.request.id, ...extra }),
    );
}

/** zod issues as `{ path, message }`, the `errors` member of a 400. */
export const zodErrors = (error: z.ZodError): NonNullable<Problem['errors']> =>
  error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
