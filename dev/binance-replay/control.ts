import { MAX_STREAMS_PER_CONNECTION, VALID_STREAM, type Conn } from './connections';

/**
 * Control messages on a connection: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY,
 * answered `{"result":…,"id":…}`, errors as `{"error":{"code":…,"msg":…},"id":…}`.
 */

const validId = (id: unknown): boolean =>
  id === null ||
  id === undefined ||
  (typeof id === 'number' && Number.isSafeInteger(id)) ||
  (typeof id === 'string' && /^[A-Za-z0-9]{1,36}$/.test(id));

export interface ControlOptions {
  reply(conn: Conn, body: object): void;
  replyError(conn: Conn, code: number, msg: string, id: unknown): void;
  subscribe(conn: Conn, names: string[]): void;
  unsubscribe(conn: Conn, names: string[]): void;
}

/** The handler of one text frame from a client. */
export function createControlHandler({
  reply,
  replyError,
  subscribe,
  unsubscribe,
}: ControlOptions): (conn: Conn, text: string) => void {
  return (conn: Conn, text: string): void => {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return replyError(conn, 3, 'Invalid JSON: expected value at line 1 column 1', null);
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      return replyError(conn, 2, 'Invalid request: expected a JSON object', null);
    }
    const { method, params, id } = req as { method?: unknown; params?: unknown; id?: unknown };
    if (!validId(id)) return replyError(conn, 2, 'Invalid request: request ID must be an unsigned integer', null);
    if (method === undefined) return replyError(conn, 2, 'Invalid request: missing field `method`', id);
    const list = Array.isArray(params) ? params : [];
    switch (method) {
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE': {
        if (!list.every((p): p is string => typeof p === 'string' && VALID_STREAM.test(p))) {
          return replyError(conn, 2, 'Invalid request: invalid stream', id);
        }
        if (method === 'SUBSCRIBE') {
          const total = new Set([...conn.streams, ...list]).size;
          if (total > MAX_STREAMS_PER_CONNECTION) {
            return replyError(conn, 2, `Invalid request: too many streams (max ${MAX_STREAMS_PER_CONNECTION})`, id);
          }
          // The answer goes out before the first event of the new streams (the pump runs later).
          reply(conn, { result: null, id: id ?? null });
          subscribe(conn, list);
        } else {
          unsubscribe(conn, list);
          reply(conn, { result: null, id: id ?? null });
        }
        return;
      }
      case 'LIST_SUBSCRIPTIONS':
        return reply(conn, { result: [...conn.streams], id: id ?? null });
      case 'SET_PROPERTY':
      case 'GET_PROPERTY': {
        const [prop, value] = list as unknown[];
        if (typeof prop !== 'string') return replyError(conn, 2, 'Invalid request: property name must be a string', id);
        if (prop !== 'combined') return replyError(conn, 0, 'Unknown property', id);
        if (method === 'GET_PROPERTY') return reply(conn, { result: conn.combined, id: id ?? null });
        if (typeof value !== 'boolean') return replyError(conn, 1, 'Invalid value type: expected Boolean', id);
        conn.combined = value;
        return reply(conn, { result: null, id: id ?? null });
      }
      default:
        return replyError(
          conn,
          2,
          `Invalid request: unknown variant ${JSON.stringify(String(method))}, expected one of ` +
            '`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`',
          id,
        );
    }
  };
}
