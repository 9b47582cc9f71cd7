/* global document, window, localStorage, location, atob */
// The dashboard. It talks to the API only through the client library (client/), which the API bundles
// with this file at start-up (api/dashboard/bundle.ts): status polled every 2 s, the machine's live
// stream followed by the stream client (token as the `bearer` subprotocol, reconnect with backoff).
import { createCloudExecutionClient } from '../../client/index';

(() => {
  'use strict';
  const TOKEN_KEY = 'cloud-machine.token';
  const POLL_MS = 2000;
  const MAX_SIGNALS = 50;
  const $ = (id) => document.getElementById(id);

  let token = localStorage.getItem(TOKEN_KEY) || '';
  let state = null;
  let busy = false;
  // An action's error stays up until the next action; a polling error clears itself once polling works.
  let actionError = '';
  let pollError = '';

  const client = createCloudExecutionClient({ baseUrl: location.origin, getAccessToken: () => token });
  const stream = client.stream();

  // --- helpers -------------------------------------------------------------------------------------
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
  const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
  const fmtNum = (n) => (typeof n === 'number' ? n.toLocaleString() : '—');
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function showErrors() {
    const box = $('error');
    const message = actionError || pollError;
    box.textContent = message;
    box.hidden = !message;
  }

  function tokenClaims(t) {
    try {
      const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  }

  function renderWho() {
    const claims = token ? tokenClaims(token) : null;
    $('whoami').textContent = claims
      ? `user ${String(claims.sub).slice(0, 8)}… · token expires ${fmtDateTime(new Date(claims.exp * 1000).toISOString())}`
      : 'no token';
    $('token').value = token;
    // With a token in place the card folds away; it opens again to change or forget it.
    $('token-details').open = !token;
    $('token-summary').textContent = token ? 'set · click to change' : '';
  }

  // --- status ----------------------------------------------------------------------------------------
  function renderStatus(s) {
    state = s;
    const name = s ? s.state : 'none';
    const badge = $('state');
    badge.textContent = s ? s.state : 'no machine';
    badge.className = `state state-${name}`;
    $('since').textContent = s ? fmtDateTime(s.since) : '—';
    $('region').textContent = s ? s.region : '—';
    $('machine-id').textContent = (s && s.machineId) || '—';
    $('healthy').textContent = s ? fmtDateTime(s.lastHealthyAt) : '—';
    $('tier').textContent = (s && s.tier) || '—';
    $('reason').textContent = (s && s.reason) || '—';

    const grace = $('grace');
    grace.hidden = !(s && s.paymentGraceEndsAt);
    if (s && s.paymentGraceEndsAt)
      grace.textContent =
        Date.parse(s.paymentGraceEndsAt) > Date.now()
          ? `Payment overdue: your machine keeps running until ${fmtDateTime(s.paymentGraceEndsAt)}. Update your payment method to keep it.`
          : `Payment overdue since ${fmtDateTime(s.paymentOverdueSince)}: the grace period ended ${fmtDateTime(s.paymentGraceEndsAt)}. Once the payment goes through, a machine stopped for it starts again by itself.`;

    const list = $('timeline');
    list.replaceChildren();
    const recent = (s && s.recent) || [];
    if (recent.length === 0) list.append(el('li', 'muted', 'No transitions yet.'));
    for (const t of recent.slice().reverse()) {
      const li = el('li');
      const time = el('time', '', fmtTime(t.at));
      time.title = t.at;
      li.append(time, el('span', `st state-${t.state}`, t.state), el('span', 'muted', t.reason || ''));
      list.append(li);
    }

    const active = s && ['provisioning', 'starting', 'running'].includes(s.state);
    $('start').disabled = busy || !token || !!active || (s && s.state === 'stopping');
    $('stop').disabled = busy || !token || !active;
    syncStream();
  }

  async function poll() {
    if (!token) return renderStatus(null);
    try {
      renderStatus(await client.status()); // null: the user never had a machine
      pollError = '';
    } catch (err) {
      pollError = err.detail || err.message;
    }
    showErrors();
  }

  async function act(action) {
    busy = true;
    actionError = '';
    renderStatus(state);
    try {
      if (!token) throw new Error('Paste an access token first.');
      await action();
    } catch (err) {
      // A CloudExecutionError carries the problem's `detail`, the sentence meant for a person.
      actionError = err.detail || err.message;
    } finally {
      busy = false;
      await poll();
    }
  }

  // --- live stream -----------------------------------------------------------------------------------
  function setStreamStatus(text, cls) {
    const pill = $('stream-status');
    pill.textContent = text;
    pill.className = `pill ${cls || ''}`;
  }

  function syncStream() {
    const wanted = !!token && state && state.state === 'running';
    // After the client stopped for good (e.g. 4404 while the machine was still coming up) the next poll
    // that still says `running` connects again.
    if (wanted && (stream.state === 'idle' || stream.state === 'closed')) stream.connect();
    if (!wanted && stream.state !== 'idle' && stream.state !== 'closed') {
      stream.disconnect();
      setStreamStatus('offline', '');
    }
    // Also when the machine closed the stream first (it stops: 1001) before a poll saw `stopping`.
    if (!wanted && state) $('health').textContent = 'Not streaming: the machine is not running.';
  }

  stream.on('connection', (h) => {
    if (h.state === 'connecting') setStreamStatus('connecting…', 'connecting');
    else if (h.state === 'open') setStreamStatus('live', 'live');
    else if (h.state === 'reconnecting' || (h.state === 'closed' && h.stopReason !== 'disconnected')) {
      const reason = h.lastClose && h.lastClose.reason;
      setStreamStatus(reason ? `closed: ${reason}` : 'offline', '');
    }
  });
  // The stream client's connection health, refreshed on every change and every poll.
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
  // The runtime sends signals batched (`signals` frames); the client hands them on one at a time.
  stream.on('signal', (m) => addSignal(m.signal));

  function addSignal(s) {
    const list = $('signals');
    if (list.firstElementChild && list.firstElementChild.classList.contains('muted')) list.replaceChildren();
    const li = el('li');
    const time = el('time', '', fmtTime(s.firedAt));
    const close = s.payload && s.payload.close !== undefined ? ` @ ${s.payload.close}` : '';
    li.append(time, el('span', 'sym', s.symbol), el('span', 'muted', `${s.interval} · ${s.traderName || ''}${close}`));
    list.prepend(li);
    while (list.children.length > MAX_SIGNALS) list.lastElementChild.remove();
  }

  // --- wiring --------------------------------------------------------------------------------------------
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    actionError = '';
    renderWho();
    void poll();
  });
  $('forget-token').addEventListener('click', () => {
    token = '';
    actionError = '';
    localStorage.removeItem(TOKEN_KEY);
    renderWho();
    void poll();
  });
  $('start').addEventListener('click', () => void act(() => client.provision({ region: $('start-region').value })));
  $('stop').addEventListener('click', () => void act(() => client.stop()));

  renderWho();
  void poll();
  window.setInterval(() => {
    void poll();
    renderConnection();
  }, POLL_MS);
})();
