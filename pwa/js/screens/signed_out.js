// A revoked device lands here (its socket closed with "token revoked", or /session says signed_out), never on a
// blank page: what happened, and how to get back in.
import { html } from '../lib.js';

export function SignedOutScreen() {
  return html`<section class="screen signed-out stack" aria-labelledby="signed-out-title">
    <h1 id="signed-out-title">This device was signed out</h1>
    <p>The daemon no longer accepts this device: it was removed with <code>cauldronctl devices revoke</code> (or
      its pairing was lost). Nothing on the daemon was changed; your experiments and images are still there.</p>
    <div class="card stack">
      <h2>To use it again, pair it again</h2>
      <ol>
        <li>On the daemon's machine run <code>cauldronctl pair</code>.</li>
        <li>Scan the QR code it shows, or enter its code on the pair screen.</li>
      </ol>
      <p><a class="button" href="/pair">Pair this device again</a></p>
    </div>
    <p class="muted">On the daemon's own machine, <code>cauldronctl open</code> signs a browser in directly.</p>
    </section>`;
}
