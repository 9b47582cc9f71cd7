/* global window */
// The "History" card: my timeline (GET /v1/machines/me/timeline: transitions, billing events, self-heals,
// rollouts, operator actions, each with its reason code and a sentence), newest first with an "Older"
// button, and this month's uptime line (GET /v1/machines/me/uptime). Through the client library only.
import { $, el, detailOf } from './dom';

const REFRESH_MS = 30000;
const PAGE = 20;

const fmt = (iso) => new Date(iso).toLocaleString();
const minutes = (m) => (m >= 120 ? `${Math.round(m / 6) / 10} h` : `${m} min`);

/** "99.685 % this month · down: ours 60 min, Fly 60 min · stopped by you 2 days" */
export function uptimeLine(u) {
  const month = u.months[u.months.length - 1];
  if (!month || month.entitledMinutes === 0) return 'No machine time this month yet.';
  const avail = month.availabilityPercent === null ? '—' : `${month.availabilityPercent.toFixed(3)} %`;
  const d = month.down;
  const down = [
    d.ours && `ours ${minutes(d.ours)}`,
    d.fly && `Fly ${minutes(d.fly)}`,
    d.user && `stopped by you ${minutes(d.user)}`,
    d.billing && `billing ${minutes(d.billing)}`,
  ].filter(Boolean);
  const credit = month.creditPercent ? ` · credit ${month.creditPercent} % ($${month.creditUsd.toFixed(2)})` : '';
  return `${avail} up this month (SLO ${month.sloPercent} %)${down.length ? ` · down: ${down.join(', ')}` : ''}${credit}`;
}

export function createTimelineCard({ client, hasToken }) {
  let entries = [];
  let next = null;
  let pagedBack = false;
  let timer = 0;

  const showError = (message) => {
    $('history-error').textContent = message;
    $('history-error').hidden = !message;
  };

  function render() {
    const list = $('history');
    list.replaceChildren();
    if (!hasToken()) list.append(el('li', 'muted', 'Paste an access token to see your history.'));
    else if (entries.length === 0) list.append(el('li', 'muted', 'Nothing yet.'));
    for (const e of entries) {
      const li = el('li', `history-${e.kind}`);
      const time = el('time', '', fmt(e.at));
      time.dateTime = e.at;
      const code = el('code', 'history-code', e.code);
      code.title = e.kind;
      li.append(time, code, el('span', '', e.text));
      list.append(li);
    }
    $('history-more').hidden = !next;
  }

  async function loadUptime() {
    try {
      $('uptime-summary').textContent = hasToken() ? uptimeLine(await client.uptime()) : '';
    } catch (err) {
      $('uptime-summary').textContent = `Uptime unavailable: ${detailOf(err)}`;
    }
  }

  /** The newest page again (unless the user is reading older ones), and the month's uptime. */
  async function load() {
    window.clearTimeout(timer);
    if (!hasToken()) {
      entries = [];
      next = null;
      showError('');
      render();
      $('uptime-summary').textContent = '';
      return;
    }
    try {
      if (!pagedBack) {
        const page = await client.timeline({ limit: PAGE });
        entries = page.entries;
        next = page.next;
      }
      showError('');
    } catch (err) {
      showError(detailOf(err));
    }
    render();
    await loadUptime();
    timer = window.setTimeout(() => void load(), REFRESH_MS);
  }

  $('history-more').addEventListener('click', async () => {
    if (!next) return;
    try {
      const page = await client.timeline({ limit: PAGE, before: next });
      entries = [...entries, ...page.entries];
      next = page.next;
      pagedBack = true;
      showError('');
    } catch (err) {
      showError(detailOf(err));
    }
    render();
  });

  return {
    load: () => {
      pagedBack = false;
      return load();
    },
  };
}
