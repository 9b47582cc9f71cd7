import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';

/**
 * One server span per HTTP request (only when tracing is on: common/tracing.ts), made the active context for
 * everything the request does, so the Temporal client's StartWorkflow span (and through it the workflow's)
 * is its child. A caller's W3C `traceparent` is continued. The name is method and path (the query is
 * dropped: no token or id from it reaches a span); WebSocket upgrades are not traced.
 */
export function traceHttpRequests(server: Server, tracer: Tracer): void {
  const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      `${req.method ?? 'GET'} ${path}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? 'GET', 'url.path': path } },
      parent,
    );
    const active = trace.setSpan(parent, span);
    // The body arrives in events on `req`, and the route runs from them: they must carry the context too.
    context.bind(active, req);
    context.bind(active, res);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(active, () => {
      for (const listener of listeners) listener.call(server, req, res);
    });
  });
}
