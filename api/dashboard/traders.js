/* global document */
// The "My traders" card: the user's traders (GET /v1/traders) with an enable switch (PATCH `enabled`),
// Edit (in the JSON editor), delete after a confirmation, and a create form for the common filters,
// with a preview, whose validation errors (the API's 400 `errors`, each naming a field path) show next
// to the field they point at. The full language is the JSON editor's (trader-editor.js).
import { confirmDialog } from './confirm';
import { $, el, detailOf } from './dom';

/** Which form field an API error path points at (`definition.symbols.0` → the symbols input). */
const FIELDS = [
  ['name', 't-name'],
  ['definition.symbols', 't-symbols'],
  ['definition.interval', 't-interval'],
  ['definition.filter', 't-value'],
];

/** The common filters the form offers, as the trader language says them. */
const KINDS = {
  'rsi-below': (v) => ({ all: [{ left: { indicator: 'rsi', period: 14 }, op: '<', right: v }] }),
  'rsi-above': (v) => ({ all: [{ left: { indicator: 'rsi', period: 14 }, op: '>', right: v }] }),
  'ema-cross-up': (v) => ({
    all: [{ left: { indicator: 'price', field: 'close' }, op: 'crossesAbove', right: { indicator: 'ema', period: v } }],
  }),
  'ema-cross-down': (v) => ({
    all: [{ left: { indicator: 'price', field: 'close' }, op: 'crossesBelow', right: { indicator: 'ema', period: v } }],
  }),
  'volume-spike': (v) => ({ all: [{ left: { indicator: 'volumeRatio', period: 20 }, op: '>', right: v }] }),
  'change-above': (v) => ({ all: [{ left: { indicator: 'change', period: 1 }, op: '>', right: v }] }),
};
const fieldFor = (path) => (FIELDS.find(([prefix]) => path === prefix || path.startsWith(`${prefix}.`)) || [])[1];

export function createTradersCard({ client, hasToken, onLoaded, onEdit, onPreview }) {
  let traders = [];

  const showError = (message) => {
    $('traders-error').textContent = message;
    $('traders-error').hidden = !message;
  };

  function render(max) {
    const list = $('traders');
    list.replaceChildren();
    $('traders-count').textContent = hasToken() ? `${traders.length}${max ? ` of ${max}` : ''}` : '';
    if (!hasToken()) return list.append(el('li', 'muted', 'Sign in to see your traders.'));
    if (traders.length === 0) list.append(el('li', 'muted', 'No traders yet.'));
    for (const t of traders) {
      const li = el('li', 'trader');
      li.dataset.id = t.id;
      const text = el('div', 'trader-text');
      text.append(
        el('span', 'trader-name', t.name),
        el('span', 'muted', `${t.definition.symbols.join(', ')} · ${t.definition.interval}`),
      );
      const toggle = el('label', 'switch');
      const box = el('input');
      box.type = 'checkbox';
      box.setAttribute('role', 'switch');
      box.checked = t.enabled;
      box.setAttribute('aria-label', `${t.name} enabled`);
      box.addEventListener('change', () => void setEnabled(t, box));
      toggle.append(box, el('span', '', t.enabled ? 'on' : 'off'));
      const edit = el('button', 'ghost', 'Edit');
      edit.type = 'button';
      edit.setAttribute('aria-label', `Edit ${t.name}`);
      edit.addEventListener('click', () => onEdit(t));
      const del = el('button', 'ghost danger-text', 'Delete');
      del.type = 'button';
      del.setAttribute('aria-label', `Delete ${t.name}`);
      del.addEventListener('click', () => void remove(t, del));
      li.append(text, toggle, edit, del);
      list.append(li);
    }
  }

  async function load() {
    if (!hasToken()) {
      traders = [];
      showError('');
      onLoaded(traders, hasToken());
      return render();
    }
    try {
      const result = await client.listTraders();
      traders = result.traders;
      showError('');
      render(result.max);
      onLoaded(traders, hasToken());
    } catch (err) {
      showError(detailOf(err));
    }
  }

  async function setEnabled(t, box) {
    box.disabled = true;
    try {
      await client.updateTrader(t.id, { enabled: box.checked });
      showError('');
    } catch (err) {
      box.checked = !box.checked;
      showError(detailOf(err));
    }
    await load();
  }

  async function remove(t, button) {
    const yes = await confirmDialog({
      title: `Delete "${t.name}"?`,
      message: 'Your machine stops running it within seconds. This cannot be undone.',
      confirmLabel: 'Delete trader',
    });
    if (!yes) return;
    button.disabled = true;
    try {
      await client.deleteTrader(t.id);
      showError('');
    } catch (err) {
      showError(detailOf(err));
    }
    await load();
  }

  function clearFieldErrors() {
    for (const [, id] of FIELDS) {
      $(id).removeAttribute('aria-invalid');
      $(`${id}-error`).textContent = '';
    }
    $('trader-form-error').textContent = '';
  }

  function showFieldErrors(err) {
    const loose = [];
    for (const e of err.errors || []) {
      const id = fieldFor(e.path);
      if (!id) {
        loose.push(`${e.path}: ${e.message}`);
        continue;
      }
      $(id).setAttribute('aria-invalid', 'true');
      const box = $(`${id}-error`);
      box.textContent = box.textContent ? `${box.textContent}; ${e.message}` : e.message;
    }
    $('trader-form-error').textContent = loose.length ? loose.join('; ') : err.errors ? '' : detailOf(err);
    const first = document.querySelector('#trader-form [aria-invalid="true"]');
    if (first) first.focus();
  }

  $('trader-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void create();
  });

  function formDefinition() {
    const symbols = $('t-symbols')
      .value.split(/[\s,]+/)
      .filter(Boolean);
    const value = $('t-value').value === '' ? NaN : Number($('t-value').value);
    return { symbols, interval: $('t-interval').value, filter: KINDS[$('t-kind').value](value) };
  }

  $('t-preview').addEventListener('click', async () => {
    clearFieldErrors();
    const err = await onPreview(formDefinition(), 't-preview-result');
    if (err && err.errors) showFieldErrors(err);
  });

  async function create() {
    clearFieldErrors();
    const definition = formDefinition();
    const submit = $('trader-create');
    submit.disabled = true;
    try {
      await client.createTrader({ name: $('t-name').value, definition });
      $('trader-form').reset();
      await load();
    } catch (err) {
      showFieldErrors(err);
    } finally {
      submit.disabled = false;
    }
  }

  return { load };
}
