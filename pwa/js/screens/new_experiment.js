// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function NewExperimentScreen() {
  return html`<section class="screen"><h1>NewExperimentScreen</h1><p class="muted">Coming soon.</p></section>`;
}
