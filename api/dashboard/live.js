// The "Live" card: the machine's stream, followed by the client library's stream client (token as the
// `bearer` subprotocol, reconnect with backoff), shown as tiles, health and the last frame. Its
// `hello`, closed candles and signals go on to the chart and the signals list (the handlers).
import { $ } from './dom';
const fmtNum = (n) => (typeof n === 'number' ? n.toLocaleString() : '—');

export function createLiveCard(stream, handlers) {
  function setStreamStatus(text, cls) {
    const pill = $('stream-status');
    pill.textContent = text;
    pill.className = `pill ${cls || ''}`;
  }

  /** Connects while the machine runs (and a token is set), disconnects otherwise. */
  function sync(wanted, status) {
    // After the client stopped for good (e.g. 4404 while the machine was still coming up) the next poll
    // that still says `running` connects again.
    if (wanted && (stream.state === 'idle' || stream.state === 'closed')) stream.connect();
    if (!wanted && stream.state !== 'idle' && stream.state !== 'closed') {
      stream.disconnect();
      setStreamStatus('offline', '');
    }
    // Also when the machine closed the stream first (it stops: 1001) before a poll saw `stopping`.
    if (!wanted && status) $('health').textContent = 'Not streaming: the machine is not running.';
  }

  stream.on('connection', (h) => {
    if (h.state === 'connecting') setStreamStatus('connecting…', 'connecting');
    else if (h.state === 'open') setStreamStatus('live', 'live');
    else if (h.state === 'reconnecting' || (h.state === 'closed' && h.stopReason !== 'disconnected')) {
      const reason = h.lastClose && h.lastClose.reason;
      setStreamStatus(reason ? `closed: ${reason}` : 'offline', '');
    }
  });

  // The stream client's connection health, refreshed on every change and every couple of seconds.
  function renderConnection() {
    const h = stream.getConnectionHealth();
    const m = h.metrics;
    const parts = [];
    if (h.roundTripMs !== null) parts.push(`connect→hello ${h.roundTripMs} ms`);
    if (h.lastMessageAgeMs !== null && h.state === 'open')
      parts.push(`last frame ${Math.round(h.lastMessageAgeMs / 1000)} s ago`);
    if (m.connectionAttempts)
      parts.push(`${m.successfulConnections}/${m.connectionAttempts} connections, ${m.reconnections} reconnects`);
    if (h.nextReconnectAt)
      parts.push(`retrying in ${Math.max(0, Math.round((h.nextReconnectAt - Date.now()) / 1000))} s`);
    $('connection').textContent = parts.join(' · ');
  }
  stream.on('connection', renderConnection);

  stream.on('message', (raw, msg) => {
    if (msg) onFrame(msg);
    $('last-frame').textContent = raw.slice(0, 2000);
  });

  function onFrame(msg) {
    if (msg.type === 'hello') {
      $('m-traders').textContent = fmtNum(msg.traders);
      handlers.onHello(msg);
    } else if (msg.type === 'metrics') {
      $('m-candles').textContent = fmtNum(msg.candlesProcessed);
      $('m-evals').textContent = fmtNum(msg.evaluations);
      $('m-signals').textContent = fmtNum(msg.signalsFired);
      $('m-feed').textContent = fmtNum(msg.feedMessages);
      $('m-heap').textContent = msg.heapUsedBytes ? `${Math.round(msg.heapUsedBytes / 1048576)} MB` : '—';
    } else if (msg.type === 'state' && msg.state) {
      const h = msg.state;
      $('m-traders').textContent = fmtNum(h.traders);
      $('m-candles').textContent = fmtNum(h.candlesProcessed);
      $('m-signals').textContent = fmtNum(h.signalsFired);
      $('health').textContent = h.ok
        ? `Healthy${h.idle ? ' (no enabled traders)' : ''} · ${h.streams} streams · up ${h.uptimeSeconds} s`
        : `Unhealthy: ${(h.reasons || []).join('; ')}`;
    }
  }
  // The runtime sends candles and signals batched; the client hands them on one at a time.
  stream.on('candle', (m) => handlers.onCandle(m.candle));
  stream.on('signal', (m) => handlers.onSignal(m.signal));

  return { sync, renderConnection };
}
