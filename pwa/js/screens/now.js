// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function NowScreen() {
  return html`<section class="screen"><h1>NowScreen</h1><p class="muted">Coming soon.</p></section>`;
}
