/* global document */
// A confirmation dialog in the page (a modal <dialog>, not window.confirm): focus moves into it (to
// Cancel, the safe choice), Tab stays inside, Escape or Cancel answers false, the confirm button true.
// Focus goes back to what had it before.

/** Resolves true when the user confirms. `opts`: { title, message, confirmLabel }. */
export function confirmDialog({ title, message, confirmLabel = 'Confirm' }) {
  const dialog = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-message').textContent = message;
  ok.textContent = confirmLabel;
  const before = document.activeElement;
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      if (before && typeof before.focus === 'function') before.focus();
      resolve(answer);
    };
    const onOk = () => done(true);
    // `cancel`: Escape on a modal dialog.
    const onCancel = (ev) => {
      if (ev) ev.preventDefault();
      done(false);
    };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    cancel.focus();
  });
}
