/**
 * Connection health of the stream client: its states, why it stops, the metrics it counts (the seed's
 * names), what it records about the socket, and the `getConnectionHealth()` snapshot made from that.
 */

export type StreamState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
/** Why the client stopped for good (until `connect()` is called again). */
export type StopReason =
  | 'disconnected' // disconnect() was called
  | 'no_machine' // 4404, or no running machine behind a refused handshake
  | 'machine_stopped' // 1001 / 4503: the machine (or the API) went away on purpose
  | 'closed_by_server' // 1000
  | 'unauthorized' // no token, 401 before the upgrade, 4401 / 4403
  | 'max_attempts';

/** The seed's `cloudWebSocketClient` metrics, same names. */
export interface ConnectionMetrics {
  /** Every socket opened, first connect and reconnects. */
  connectionAttempts: number;
  /** Attempts that reached `open`. */
  successfulConnections: number;
  /** Attempts that closed before `open` (refused, unreachable). */
  failedConnections: number;
  messagesSent: number;
  messagesReceived: number;
  /** Attempts made by the automatic reconnect (not by `connect()`). */
  reconnections: number;
}

export interface ConnectionHealth {
  state: StreamState;
  /** Open and a frame arrived within `staleAfterMs` (the runtime sends `metrics` and `state` every 5 s). */
  isHealthy: boolean;
  metrics: ConnectionMetrics;
  connectedAt: number | null;
  lastMessageAt: number | null;
  lastMessageAgeMs: number | null;
  /**
   * The machine runtime answers no application-level ping, so this is the time from opening the socket
   * to its `hello`: handshake, the API's machine lookup and its connection to the machine.
   */
  roundTripMs: number | null;
  roundTripSource: 'hello' | null;
  /** Consecutive failed attempts so far (reset once a frame arrives). */
  reconnectAttempt: number;
  nextReconnectAt: number | null;
  lastClose: { code: number; reason: string; at: number } | null;
  stopReason: StopReason | null;
}

/** What the client records as its socket comes and goes; `connectionHealth()` turns it into a snapshot. */
export interface ConnectionRecord {
  metrics: ConnectionMetrics;
  connectedAt: number | null;
  lastMessageAt: number | null;
  roundTripMs: number | null;
  /** Consecutive failed attempts (reset once a frame arrives): the backoff's exponent. */
  attempt: number;
  nextReconnectAt: number | null;
  lastClose: ConnectionHealth['lastClose'];
  stopReason: StopReason | null;
}

export function newConnectionRecord(): ConnectionRecord {
  return {
    metrics: {
      connectionAttempts: 0,
      successfulConnections: 0,
      failedConnections: 0,
      messagesSent: 0,
      messagesReceived: 0,
      reconnections: 0,
    },
    connectedAt: null,
    lastMessageAt: null,
    roundTripMs: null,
    attempt: 0,
    nextReconnectAt: null,
    lastClose: null,
    stopReason: null,
  };
}

/** The snapshot `getConnectionHealth()` returns (and every `connection` handler gets), as of now. */
export function connectionHealth(state: StreamState, record: ConnectionRecord, staleAfterMs: number): ConnectionHealth {
  const now = Date.now();
  const age = record.lastMessageAt === null ? null : now - record.lastMessageAt;
  return {
    state,
    isHealthy: state === 'open' && age !== null && age < staleAfterMs,
    metrics: { ...record.metrics },
    connectedAt: record.connectedAt,
    lastMessageAt: record.lastMessageAt,
    lastMessageAgeMs: age,
    roundTripMs: record.roundTripMs,
    roundTripSource: record.roundTripMs === null ? null : 'hello',
    reconnectAttempt: record.attempt,
    nextReconnectAt: record.nextReconnectAt,
    lastClose: record.lastClose,
    stopReason: record.stopReason,
  };
}
