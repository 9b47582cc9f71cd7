/* global window */
// The trader editor: the full trader language as JSON, checked while typing — JSON syntax here, at
// once; the rest by the API (POST /v1/traders/validate: the runtime's own schema and bounds, the same
// messages a save would answer, at the same field paths; zod itself stays out of the page's bundle) —
// a preview over the last 500 candles by the runtime's engine (POST /v1/traders/preview), and Save
// (create, or change the trader being edited).
import { $, el, detailOf } from './dom';

const PREVIEW_CANDLES = 500;
const SHOWN_FIRINGS = 12;

export const EXAMPLE = {
  symbols: ['BTCUSDT'],
  interval: '5m',
  filter: {
    all: [
      { left: { indicator: 'rsi', period: 14 }, op: '<', right: 35 },
      { left: { indicator: 'price', field: 'close' }, op: 'crossesAbove', right: { indicator: 'ema', period: 20 } },
    ],
  },
  fireOn: 'change',
};

/** JSON.parse's complaint as "line 3, column 14: …" (browsers give a position, not always a line). */
function jsonError(text, err) {
  const m = /position (\d+)/.exec(err.message);
  if (!m) return err.message;
  const upTo = text.slice(0, Number(m[1]));
  const line = upTo.split('\n').length;
  const column = Number(m[1]) - upTo.lastIndexOf('\n');
  return `line ${line}, column ${column}: ${err.message.replace(/ in JSON at position \d+.*$/, '')}`;
}

/** Text → `{ definition }` (parsed JSON, not yet checked by the API) or the syntax error. */
export function parseDefinition(text) {
  try {
    return { definition: JSON.parse(text), errors: [] };
  } catch (err) {
    return { errors: [{ path: 'definition', message: `not JSON: ${jsonError(text, err)}` }] };
  }
}

export function createTraderEditor({ client, onSaved, onPickFiring }) {
  let editing = null; // the trader being changed, or null for a new one
  let timer = 0;
  let checkSeq = 0;

  function showErrors(errors) {
    const list = $('j-errors');
    list.replaceChildren(...errors.map((e) => el('li', '', `${e.path}: ${e.message}`)));
    $('j-definition').setAttribute('aria-invalid', errors.length ? 'true' : 'false');
    $('j-status').textContent = errors.length
      ? `${errors.length} problem${errors.length > 1 ? 's' : ''}`
      : 'Valid: the API would accept it.';
    $('j-status').className = errors.length ? 'field-error' : 'ok-text';
  }

  /** Syntax at once, then the API's verdict (the latest answer wins); resolves to `{ definition, errors }`. */
  async function check() {
    const seq = ++checkSeq;
    const result = parseDefinition($('j-definition').value);
    if (result.errors.length) {
      showErrors(result.errors);
      return result;
    }
    $('j-status').textContent = 'Checking…';
    $('j-status').className = 'muted';
    try {
      const v = await client.validateTrader({ name: $('j-name').value || 'unnamed', definition: result.definition });
      if (seq === checkSeq) showErrors(v.errors);
      return { definition: result.definition, errors: v.errors };
    } catch (err) {
      if (seq === checkSeq) {
        $('j-status').textContent = `Could not check it: ${detailOf(err)}`;
        $('j-status').className = 'field-error';
      }
      return { definition: result.definition, errors: [] }; // the save itself will say what is wrong
    }
  }

  function open(trader) {
    editing = trader || null;
    $('j-name').value = trader ? trader.name : '';
    $('j-definition').value = JSON.stringify(trader ? trader.definition : EXAMPLE, null, 2);
    $('j-title').textContent = trader ? `Edit “${trader.name}” (JSON)` : 'Trader editor (JSON)';
    $('j-save').textContent = trader ? 'Save changes' : 'Create trader';
    $('j-form-error').textContent = '';
    $('j-preview-result').replaceChildren();
    $('trader-json').open = true;
    void check();
  }

  /** Renders "would have fired N times …" with the firing times as buttons (→ the chart). */
  function renderPreview(p, box) {
    const n = p.firings.length;
    const summary = el(
      'p',
      'preview-summary',
      `Would have fired ${n} time${n === 1 ? '' : 's'} over the last ${p.candles} candles of ${p.symbol} ${p.interval}` +
        (p.from ? ` (${new Date(p.from).toLocaleString()} – ${new Date(p.to).toLocaleString()}).` : '.'),
    );
    const list = el('ol', 'preview-firings');
    for (const f of p.firings.slice(-SHOWN_FIRINGS).reverse()) {
      const b = el('button', 'linkish', `${new Date(f.openTime).toLocaleString()} @ ${f.close}`);
      b.type = 'button';
      b.addEventListener('click', () => onPickFiring(p.symbol, p.interval, f.openTime));
      const li = el('li');
      li.append(b);
      list.append(li);
    }
    box.replaceChildren(summary);
    if (n > SHOWN_FIRINGS) box.append(el('p', 'muted', `The latest ${SHOWN_FIRINGS}:`));
    if (n > 0) box.append(list);
  }

  /** Previews any definition (the editor's, or the simple form's) into `boxId`; the API's field errors come back. */
  async function preview(definition, boxId = 'j-preview-result') {
    const box = $(boxId);
    box.replaceChildren(el('p', 'muted', 'Computing…'));
    try {
      renderPreview(await client.previewTrader({ definition, candles: PREVIEW_CANDLES }), box);
      return null;
    } catch (err) {
      box.replaceChildren(el('p', 'field-error', `Preview failed: ${detailOf(err)}`));
      if (boxId === 'j-preview-result' && err.errors) showErrors(err.errors);
      return err;
    }
  }

  async function save() {
    const result = await check();
    if (result.errors.length) return $('j-definition').focus();
    const body = { name: $('j-name').value.trim(), definition: result.definition };
    $('j-save').disabled = true;
    $('j-form-error').textContent = '';
    try {
      if (editing) await client.updateTrader(editing.id, body);
      else await client.createTrader(body);
      $('j-form-error').textContent = '';
      editing = null;
      $('trader-json').open = false;
      await onSaved();
    } catch (err) {
      if (err.errors) showErrors(err.errors);
      $('j-form-error').textContent = detailOf(err);
    } finally {
      $('j-save').disabled = false;
    }
  }

  for (const id of ['j-definition', 'j-name'])
    $(id).addEventListener('input', () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => void check(), 400);
    });
  $('j-definition').addEventListener('keydown', (ev) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are never trapped).
    if (ev.key === 'Tab' && !ev.shiftKey && $('j-definition').dataset.trap !== 'off') {
      ev.preventDefault();
      const t = ev.target;
      const at = t.selectionStart;
      t.value = `${t.value.slice(0, at)}  ${t.value.slice(t.selectionEnd)}`;
      t.selectionStart = t.selectionEnd = at + 2;
    } else if (ev.key === 'Escape') $('j-definition').dataset.trap = 'off';
  });
  $('j-definition').addEventListener('blur', () => delete $('j-definition').dataset.trap);
  $('j-preview').addEventListener('click', async () => {
    const result = await check();
    if (result.errors.length === 0) void preview(result.definition);
  });
  $('j-new').addEventListener('click', () => open(null));
  $('json-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void save();
  });
  // Filled with an example, folded; checked once it is opened (signed in by then).
  editing = null;
  $('j-definition').value = JSON.stringify(EXAMPLE, null, 2);
  $('trader-json').addEventListener('toggle', () => {
    if ($('trader-json').open) void check();
  });

  return { edit: open, preview };
}
