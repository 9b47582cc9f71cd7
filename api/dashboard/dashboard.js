/* global document, window, location */
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
import { createSignIn } from './sign-in';
import { createTraderEditor } from './trader-editor';
import { createTradersCard } from './traders';
import { createTimelineCard } from './timeline';

(() => {
  'use strict';
  const TICK_MS = 2000;
  const FALLBACK_POLL_MS = 15000;
  const CHANGING = ['provisioning', 'starting', 'stopping'];
  const $ = (id) => document.getElementById(id);

  // Who is signed in ('' when nobody); the token itself only ever comes from signIn.getToken().
  let signedIn = '';
  let state = null;
  let busy = false;
  let pollTimer = 0;
  // An action's error stays up until the next action; a polling error clears itself once polling works.
  let actionError = '';
  let pollError = '';

  const signIn = createSignIn({
    onChange: (who) => {
      signedIn = who;
      tokenChanged();
    },
  });
  const client = createCloudExecutionClient({ baseUrl: location.origin, getAccessToken: () => signIn.getToken() });
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
    hasToken: () => !!signedIn,
    onLoaded: (list, signedIn) => chart.setTraders(list, signedIn),
    onEdit: (t) => editor.edit(t),
    onPreview: (definition, boxId) => editor.preview(definition, boxId),
  });
  const history = createTimelineCard({ client, hasToken: () => !!signedIn });

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
    $('start').disabled = busy || !signedIn || !!active || (s && s.state === 'stopping');
    $('stop').disabled = busy || !signedIn || !active;
    live.sync(!!signedIn && !!s && s.state === 'running', s);
  }

  // --- status events (one stream per sign-in; polling only if the stream is refused) --------------------
  let watch = null;
  let watchToken = '';
  let watchRefused = '';
  let watchRetriedWith = '';
  function schedule() {
    window.clearTimeout(pollTimer);
    if (watch && watchToken !== signedIn) {
      watch.close();
      watch = null;
    }
    if (signedIn && !watch && watchRefused !== signedIn) {
      watchToken = signedIn;
      watch = client.watchMachine({
        onStatus: (s) => {
          pollError = '';
          renderStatus(s);
          showErrors();
        },
        onError: async (detail, final) => {
          if (!final) {
            pollError = detail;
            return showErrors();
          }
          watch = null;
          // The stream ends when its token expires: a renewed one (Supabase) opens it again at once;
          // refused again with the same token, it stays refused (polling, and the error shown).
          const fresh = await signIn.getToken();
          if (fresh && fresh !== watchRetriedWith) watchRetriedWith = fresh;
          else {
            pollError = detail;
            showErrors();
            watchRefused = watchToken;
          }
          schedule();
        },
      });
    }
    if (signedIn && !watch) pollTimer = window.setTimeout(() => void poll(), FALLBACK_POLL_MS);
  }

  async function poll() {
    window.clearTimeout(pollTimer);
    try {
      if (!signedIn) renderStatus(null);
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
      if (!signedIn) throw new Error('Sign in first.');
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
    void poll();
    void traders.load();
    void signals.reload(!!signedIn);
    void history.load();
  }
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

  void loadOptions();
  void signIn.start(); // signs in whoever was (tokenChanged), then sets up the ways to sign in
  // The stream's connection line ("last frame 3 s ago") ticks without asking the API anything.
  window.setInterval(() => live.renderConnection(), TICK_MS);
})();
