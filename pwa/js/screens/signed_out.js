// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function SignedOutScreen() {
  return html`<section class="screen"><h1>SignedOutScreen</h1><p class="muted">Coming soon.</p></section>`;
}
