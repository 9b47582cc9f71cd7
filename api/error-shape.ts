import type { FastifyError, FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HttpProblem, sendProblem, zodErrors } from './problem';

/**
 * The API's one error shape: every error, unknown route and unparsable JSON body is answered as
 * problem+json (`problem.ts`); a 5xx says nothing but the request id, the whole error goes to the log.
 */
export function installErrorShape(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | HttpProblem | z.ZodError, req, reply) => {
    if (err instanceof HttpProblem) {
      if (err.extra.headers) void reply.headers(err.extra.headers);
      return sendProblem(reply, err.statusCode, err.detail, err.extra.errors ? { errors: err.extra.errors } : {});
    }
    if (err instanceof z.ZodError) return sendProblem(reply, 400, 'invalid request', { errors: zodErrors(err) });
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      req.log.info({ code: err.code, status }, err.message);
      return sendProblem(reply, status, clientErrorDetail(err as FastifyError, status));
    }
    // 5xx: the whole error goes to the log, the caller gets a generic detail and the request id.
    req.log.error({ err }, 'request failed');
    return sendProblem(reply, 500, 'something went wrong on our side; quote the requestId if you report it');
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));

  // Empty JSON bodies are fine (`{}` is implied); anything unparsable is a 400 that says so.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpProblem(400, 'body is not valid JSON'), undefined);
    }
  });
}

function clientErrorDetail(err: FastifyError, status: number): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request body too large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported content type: send application/json';
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'content-length does not match the body';
    default:
      return status === 429 ? `too many requests: ${err.message || 'slow down and retry later'}` : err.message;
  }
}
