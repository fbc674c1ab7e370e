// Small shared pieces. Screens own their larger components in files named after the screen.
import { html } from '../lib.js';

// An error under the field or action that caused it, with the daemon's own message.
export function ErrorText({ error, id }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : error.message || String(error);
  return html`<p class="error" role="alert" id=${id}>${text}</p>`;
}

export function Loading({ label = 'Loading' }) {
  return html`<p class="muted" aria-busy="true">${label}…</p>`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
