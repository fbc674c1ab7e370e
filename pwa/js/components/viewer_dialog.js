// A modal dialog (the native <dialog>: focus stays inside, Escape closes it) that is open while it is rendered.
import { html, useEffect, useRef } from '../lib.js';

export function Dialog({ label, onClose, className = '', children }) {
  const ref = useRef(null);
  const closing = useRef(onClose);
  closing.current = onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const closed = () => closing.current();
    dialog.addEventListener('close', closed);
    return () => {
      dialog.removeEventListener('close', closed);
      if (dialog.open) dialog.close();
    };
  }, []);
  return html`
    <dialog ref=${ref} class=${`sheet ${className}`} aria-label=${label}>
      <div class="sheet-bar">
        <h2 class="sheet-title">${label}</h2>
        <button type="button" class="secondary" onClick=${() => ref.current.close()}>Close</button>
      </div>
      ${children}
    </dialog>`;
}
