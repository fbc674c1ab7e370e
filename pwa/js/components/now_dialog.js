// A confirmation as a real modal dialog (the platform's <dialog>): focus moves into it, Tab stays inside, Escape
// closes it, and focus returns to the button that opened it.
import { html, useEffect, useId, useRef } from '../lib.js';

export function ConfirmDialog({ open, title, children, confirmLabel, cancelLabel = 'Keep it', busy = false, onConfirm, onClose }) {
  const dialog = useRef(null);
  const titleId = useId();
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);
  return html`
    <dialog ref=${dialog} class="confirm-dialog" aria-labelledby=${titleId} onClose=${() => open && onClose()}>
      <h2 id=${titleId}>${title}</h2>
      <div class="confirm-body">${children}</div>
      <div class="row confirm-actions">
        <button type="button" class="secondary" autofocus onClick=${onClose}>${cancelLabel}</button>
        <button type="button" class="danger" disabled=${busy} onClick=${onConfirm}>${confirmLabel}</button>
      </div>
    </dialog>`;
}
