// "Signals": mine, newest first — the stored ones (GET /v1/signals, paged with "Older") and the live
// ones from the stream, each once. Each shows the values that fired it and the AI note when there is
// one; it is a button: pressing it shows its candle on the chart.
import { $, el } from './dom';

const PAGE = 30;
/** One firing is one (trader, symbol, interval, candle): the store's own dedupe key. */
const keyOf = (s) => `${s.traderId}|${s.symbol}|${s.interval}|${Date.parse(s.candleOpenAt)}`;
const fmtNum = (n) =>
  typeof n === 'number' ? n.toLocaleString(undefined, { maximumFractionDigits: Math.abs(n) < 10 ? 4 : 2 }) : '—';

/** A live `signal` (the runtime's message) in the stored signal's shape. */
export function fromLive(m) {
  const p = m.payload || {};
  return {
    traderId: m.traderId,
    traderName: m.traderName || p.traderName || null,
    symbol: m.symbol,
    interval: m.interval,
    candleOpenAt: m.candleOpenAt,
    firedAt: m.firedAt,
    close: typeof p.close === 'number' ? p.close : null,
    values: p.values || {},
    aiNote: typeof p.aiNote === 'string' ? p.aiNote : null,
  };
}

export function createSignalsCard({ client, onPick }) {
  const seen = new Set();
  let next = null;

  function item(s) {
    const li = el('li', 'signal');
    const button = el('button', 'signal-button');
    button.type = 'button';
    const when = new Date(s.firedAt);
    const head = el('span', 'signal-head');
    const time = el('time', '', when.toLocaleTimeString());
    time.dateTime = s.firedAt;
    time.title = when.toLocaleString();
    head.append(
      time,
      el('span', 'sym', s.symbol),
      el('span', 'muted', `${s.interval} · ${s.traderName || 'trader'}`),
      el('span', 'price', s.close === null ? '' : `@ ${fmtNum(s.close)}`),
    );
    const values = el('span', 'signal-values');
    for (const [k, v] of Object.entries(s.values || {})) values.append(el('code', '', `${k} ${fmtNum(v)}`));
    button.append(head, values);
    if (s.aiNote) button.append(el('span', 'ai-note', s.aiNote));
    button.setAttribute(
      'aria-label',
      `${s.symbol} ${s.interval} signal of ${s.traderName || 'a trader'} at ${time.title}: show on the chart`,
    );
    button.addEventListener('click', () => onPick(s));
    li.append(button);
    return li;
  }

  function clearPlaceholder() {
    const list = $('signals');
    if (list.firstElementChild && list.firstElementChild.classList.contains('muted')) list.replaceChildren();
  }

  function renderMore() {
    $('signals-more').hidden = !next;
  }

  async function loadPage(reset) {
    if (reset) {
      seen.clear();
      next = null;
      $('signals').replaceChildren(el('li', 'muted', 'Loading…'));
    }
    try {
      const page = await client.signals({ limit: PAGE, before: reset ? undefined : next || undefined });
      if (reset) $('signals').replaceChildren();
      for (const s of page.signals) {
        if (seen.has(keyOf(s))) continue;
        seen.add(keyOf(s));
        $('signals').append(item(s));
      }
      next = page.next;
      if ($('signals').children.length === 0) $('signals').append(el('li', 'muted', 'No signals yet.'));
    } catch (err) {
      $('signals').replaceChildren(el('li', 'muted', `Could not load your signals: ${err.detail || err.message}`));
    }
    renderMore();
  }

  $('signals-more').addEventListener('click', () => void loadPage(false));

  return {
    /** Signed in (or out): the newest page again. */
    reload: (signedIn) => {
      if (signedIn) return loadPage(true);
      seen.clear();
      next = null;
      $('signals').replaceChildren(el('li', 'muted', 'Sign in to see your signals.'));
      renderMore();
    },
    /** A live signal (already normalised with fromLive): on top, unless the list has it already. */
    add(s) {
      if (seen.has(keyOf(s))) return false;
      seen.add(keyOf(s));
      clearPlaceholder();
      $('signals').prepend(item(s));
      return true;
    },
  };
}
