// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function ExperimentScreen() {
  return html`<section class="screen"><h1>ExperimentScreen</h1><p class="muted">Coming soon.</p></section>`;
}
