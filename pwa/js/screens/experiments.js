// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function ExperimentsScreen() {
  return html`<section class="screen"><h1>ExperimentsScreen</h1><p class="muted">Coming soon.</p></section>`;
}
