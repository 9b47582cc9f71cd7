/* global document, window, localStorage, location, atob */
// The dashboard. It talks to the API only through the client library (client/), which the API bundles
// with these modules at start-up (api/dashboard/bundle.ts). The machine's status arrives as server-sent
// events (GET /v1/machines/me/events: at once and on every change, one poller per user on the server
// for all tabs); only if that stream is refused does the page fall back to reading it every 15 s. The
// start form's choices come from GET /v1/options; Stop asks first.
import { createCloudExecutionClient } from '../../client/index';
import { createChartCard } from './chart';
import { confirmDialog } from './confirm';
import { createLiveCard } from './live';
import { billingText, describeReason, stepText } from './machine-text';
import { createSignalsCard, fromLive } from './signals';
import { createTraderEditor } from './trader-editor';
import { createTradersCard } from './traders';

(() => {
  'use strict';
  const TOKEN_KEY = 'cloud-machine.token';
  const TICK_MS = 2000;
  const FALLBACK_POLL_MS = 15000;
  const CHANGING = ['provisioning', 'starting', 'stopping'];
  const $ = (id) => document.getElementById(id);

  let token = localStorage.getItem(TOKEN_KEY) || '';
  let state = null;
  let busy = false;
  let pollTimer = 0;
  // An action's error stays up until the next action; a polling error clears itself once polling works.
  let actionError = '';
  let pollError = '';

  const client = createCloudExecutionClient({ baseUrl: location.origin, getAccessToken: () => token });
  const chart = createChartCard({ client });
  const signals = createSignalsCard({
    client,
    onPick: (s) => void chart.showCandle(s.symbol, s.interval, Date.parse(s.candleOpenAt)),
  });
  const live = createLiveCard(client.stream(), {
    onHello: (hello) => chart.setStreams(hello.streams),
    onCandle: (c) => chart.onCandle(c),
    onSignal: (m) => {
      const s = fromLive(m);
      if (signals.add(s)) chart.onSignal(s);
    },
  });
  const editor = createTraderEditor({
    client,
    onSaved: () => traders.load(),
    onPickFiring: (symbol, interval, openTime) => void chart.showCandle(symbol, interval, openTime),
  });
  const traders = createTradersCard({
    client,
    hasToken: () => !!token,
    onLoaded: (list, signedIn) => chart.setTraders(list, signedIn),
    onEdit: (t) => editor.edit(t),
    onPreview: (definition, boxId) => editor.preview(definition, boxId),
  });

  // --- helpers -------------------------------------------------------------------------------------
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
  const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
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

  // --- the start form's choices ------------------------------------------------------------------------
  async function loadOptions() {
    try {
      const o = await client.options();
      const fill = (select, items, chosen) => {
        select.replaceChildren(
          ...items.map(([value, label]) => {
            const opt = el('option', '', label);
            opt.value = value;
            opt.selected = value === chosen;
            return opt;
          }),
        );
        select.disabled = false;
      };
      fill(
        $('start-region'),
        o.regions.map((r) => [r.code, `${r.name} (${r.code})`]),
        o.defaults.region,
      );
      fill(
        $('start-cpu'),
        o.cpuPriorities.map((c) => [c.value, c.label]),
        o.defaults.cpuPriority,
      );
      $('options-error').hidden = true;
    } catch (err) {
      // Without the list, Start still works: the API picks its default region and size.
      $('options-error').textContent =
        `Could not load the regions (${err.detail || err.message}); Start uses the defaults.`;
      $('options-error').hidden = false;
    }
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
    const step = stepText(s);
    $('step').textContent = step;
    $('step').hidden = !step;
    $('step').className = `step ${s && CHANGING.includes(s.state) ? 'busy' : ''}`;

    const billing = billingText(s);
    $('billing').textContent = billing;
    $('billing').hidden = !billing;

    const list = $('timeline');
    list.replaceChildren();
    const recent = (s && s.recent) || [];
    if (recent.length === 0) list.append(el('li', 'muted', 'No transitions yet.'));
    for (const t of recent.slice().reverse()) {
      const li = el('li');
      const time = el('time', '', fmtTime(t.at));
      time.title = t.at;
      const why = el('span', 'muted', describeReason(t.reason));
      why.title = t.reason || '';
      li.append(time, el('span', `st state-${t.state}`, t.state), why);
      list.append(li);
    }

    const active = s && ['provisioning', 'starting', 'running'].includes(s.state);
    $('start').disabled = busy || !token || !!active || (s && s.state === 'stopping');
    $('stop').disabled = busy || !token || !active;
    live.sync(!!token && !!s && s.state === 'running', s);
  }

  // --- status events (one stream per token; polling only if the stream is refused) ----------------------
  let watch = null;
  let watchToken = '';
  let watchRefused = '';
  function schedule() {
    window.clearTimeout(pollTimer);
    if (watch && watchToken !== token) {
      watch.close();
      watch = null;
    }
    if (token && !watch && watchRefused !== token) {
      watchToken = token;
      watch = client.watchMachine({
        onStatus: (s) => {
          pollError = '';
          renderStatus(s);
          showErrors();
        },
        onError: (detail, final) => {
          pollError = detail;
          showErrors();
          if (!final) return;
          watchRefused = watchToken;
          watch = null;
          schedule();
        },
      });
    }
    if (token && !watch) pollTimer = window.setTimeout(() => void poll(), FALLBACK_POLL_MS);
  }

  async function poll() {
    window.clearTimeout(pollTimer);
    try {
      if (!token) renderStatus(null);
      else renderStatus(await client.status()); // null: the user never had a machine
      pollError = '';
    } catch (err) {
      pollError = err.detail || err.message;
    }
    showErrors();
    schedule();
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

  // --- wiring --------------------------------------------------------------------------------------------
  function tokenChanged() {
    actionError = '';
    renderWho();
    void poll();
    void traders.load();
    void signals.reload(!!token);
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    tokenChanged();
  });
  $('forget-token').addEventListener('click', () => {
    token = '';
    localStorage.removeItem(TOKEN_KEY);
    tokenChanged();
  });
  $('start').addEventListener('click', () => {
    const body = {};
    if (!$('start-region').disabled) body.region = $('start-region').value;
    if (!$('start-cpu').disabled) body.cpuPriority = $('start-cpu').value;
    void act(() => client.provision(body));
  });
  $('stop').addEventListener('click', async () => {
    const yes = await confirmDialog({
      title: 'Stop your machine?',
      message: 'Your traders stop running until you start it again. Signals that fire meanwhile are missed.',
      confirmLabel: 'Stop machine',
    });
    if (yes) void act(() => client.stop());
  });

  renderWho();
  void loadOptions();
  tokenChanged();
  // The stream's connection line ("last frame 3 s ago") ticks without asking the API anything.
  window.setInterval(() => live.renderConnection(), TICK_MS);
})();
