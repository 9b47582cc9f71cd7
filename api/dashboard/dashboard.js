/* global document, window, localStorage, WebSocket, fetch, location, atob */
// The dashboard: plain JS, no build step. Polls the status every 2 s and follows the machine's live
// stream over a WebSocket that carries the token as the `bearer` subprotocol (browsers cannot set headers).
(() => {
  'use strict';
  const TOKEN_KEY = 'cloud-machine.token';
  const POLL_MS = 2000;
  const MAX_SIGNALS = 50;
  const $ = (id) => document.getElementById(id);

  let token = localStorage.getItem(TOKEN_KEY) || '';
  let state = null;
  let socket = null;
  let reconnectTimer = null;
  let reconnectDelay = 1000;
  let busy = false;
  // An action's error stays up until the next action; a polling error clears itself once polling works.
  let actionError = '';
  let pollError = '';

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

  /** fetch with the token; a problem+json answer becomes an Error carrying its detail. */
  async function api(method, path, body) {
    if (!token) throw Object.assign(new Error('Paste an access token first.'), { status: 0 });
    const res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const type = res.headers.get('content-type') || '';
    const data = type.includes('json') ? await res.json() : null;
    if (!res.ok) {
      const detail = data && data.detail ? data.detail : `${res.status} ${res.statusText}`;
      throw Object.assign(new Error(detail), { status: res.status });
    }
    return data;
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
      grace.textContent = `Payment overdue: your machine keeps running until ${fmtDateTime(s.paymentGraceEndsAt)}. Update your payment method to keep it.`;

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
      renderStatus(await api('GET', '/v1/machines/me'));
      pollError = '';
    } catch (err) {
      if (err.status === 404) {
        renderStatus(null);
        pollError = '';
      } else pollError = err.message;
    }
    showErrors();
  }

  async function act(method, path, body) {
    busy = true;
    actionError = '';
    renderStatus(state);
    try {
      await api(method, path, body);
    } catch (err) {
      actionError = err.message;
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
    if (wanted && !socket && !reconnectTimer) connect();
    if (!wanted && socket) {
      const ws = socket;
      socket = null; // its onclose sees it is no longer current and stays quiet
      ws.close(1000, 'machine not running');
      setStreamStatus('offline', '');
      $('health').textContent = 'Not streaming: the machine is not running.';
    }
  }

  function connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/machines/me/stream`;
    setStreamStatus('connecting…', 'connecting');
    const ws = new WebSocket(url, ['bearer', token]);
    socket = ws;
    ws.onopen = () => {
      reconnectDelay = 1000;
      setStreamStatus('live', 'live');
    };
    ws.onmessage = (ev) => {
      try {
        onFrame(JSON.parse(ev.data));
      } catch {
        // A frame that is not JSON is shown raw and otherwise ignored.
      }
      $('last-frame').textContent = String(ev.data).slice(0, 2000);
    };
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      socket = null;
      setStreamStatus(ev.reason ? `closed: ${ev.reason}` : 'offline', '');
      // Still running: reconnect with backoff (a deploy, a restart of the machine).
      if (state && state.state === 'running' && token) {
        reconnectTimer = window.setTimeout(() => {
          reconnectTimer = null;
          syncStream();
        }, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      }
    };
  }

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
    } else if (msg.type === 'signal' && msg.signal) {
      addSignal(msg.signal);
    }
  }

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
  $('start').addEventListener('click', () => void act('POST', '/v1/machines', { region: $('start-region').value }));
  $('stop').addEventListener('click', () => void act('POST', '/v1/machines/me/stop'));

  renderWho();
  void poll();
  window.setInterval(() => void poll(), POLL_MS);
})();
