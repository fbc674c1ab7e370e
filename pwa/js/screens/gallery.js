// Placeholder: this screen is being built.
import { html } from '../lib.js';

export function GalleryScreen() {
  return html`<section class="screen"><h1>GalleryScreen</h1><p class="muted">Coming soon.</p></section>`;
}
