// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function PairScreen() {
  return html`<section class="screen"><h1>PairScreen</h1><p class="muted">Coming soon.</p></section>`;
}
