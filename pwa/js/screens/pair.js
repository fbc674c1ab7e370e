// Pair this browser with the daemon: a one-time code (filled in from a scanned QR link, /pair?code=...&fp=...),
// a device name, and what it takes for the phone to trust the daemon's certificate (docs/lan.md). POST /pair answers
// JSON; a refusal's message (wrong, expired or used code, lockout) is shown at the code field as the daemon wrote it.
import { html, useState } from '../lib.js';

const CODE_LENGTH = 8;

export function normalizeCode(text) {
  return String(text || '').toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, CODE_LENGTH);
}

// A fingerprint as 4-character groups, so a person can compare it with the one `cauldronctl pair` printed.
export function groupFingerprint(fingerprint) {
  const hex = String(fingerprint || '').replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return hex.match(/.{1,4}/g)?.join(' ') || '';
}

function guessDeviceName() {
  const agent = navigator.userAgent || '';
  if (/iPad/.test(agent)) return 'iPad';
  if (/iPhone/.test(agent)) return 'iPhone';
  if (/Android/.test(agent)) return /Mobile/.test(agent) ? 'Android phone' : 'Android tablet';
  if (/Mac OS X/.test(agent)) return 'Mac browser';
  if (/Windows/.test(agent)) return 'Windows browser';
  return 'browser';
}

async function postPair(code, deviceName) {
  let response;
  try {
    response = await fetch('/pair', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code, device_name: deviceName }),
    });
  } catch (error) {
    return { error: { error: 'unreachable', message: 'The daemon is unreachable. Check the Wi-Fi and try again.' } };
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (response.ok) return { paired: body };
  const fallback = `Pairing failed (${response.status}).`;
  return { error: body && body.message ? body : { error: 'http', message: fallback } };
}

function TrustSteps({ session, linkFingerprint }) {
  const fingerprint = (session && session.fingerprint) || linkFingerprint;
  const mismatch = session && session.fingerprint && linkFingerprint
    && groupFingerprint(session.fingerprint) !== groupFingerprint(linkFingerprint);
  if (!fingerprint && !(session && session.lan)) {
    return html`<section class="card stack" aria-labelledby="trust-title">
      <h2 id="trust-title">On the daemon's own machine?</h2>
      <p>Run <code>cauldronctl open</code> there: it opens this app already signed in, no code needed.</p>
    </section>`;
  }
  return html`<section class="card stack trust" aria-labelledby="trust-title">
    <h2 id="trust-title">First time on this device: trust the daemon</h2>
    <p>The daemon's certificate authority makes this page a secure, warning-free connection (needed to install the
      app). Download it, check its fingerprint, then trust it:</p>
    <p><a class="button secondary" href="/pair/ca.pem" download="shadow-cauldron-ca.pem">Download the certificate
      authority</a></p>
    ${fingerprint && html`<p>SHA-256 fingerprint (compare with what <code>cauldronctl pair</code> printed):</p>
      <p><code class="fingerprint" data-testid="fingerprint">${groupFingerprint(fingerprint)}</code></p>`}
    ${mismatch && html`<p class="error" role="alert">The fingerprint in the pairing link does not match this
      daemon's certificate. Do not pair: this may not be your daemon.</p>`}
    <details>
      <summary>iPhone and iPad (Safari)</summary>
      <ol>
        <li>Tap the download above; iOS says "Profile Downloaded".</li>
        <li>Settings → General → VPN & Device Management → "Shadow Cauldron local CA" → Install.</li>
        <li>Settings → General → About → Certificate Trust Settings → turn on full trust for it.</li>
        <li>Reopen this page in Safari: no warning now.</li>
      </ol>
    </details>
    <details>
      <summary>Android (Chrome)</summary>
      <ol>
        <li>Settings → Security & privacy → More security settings → Encryption & credentials → Install a
          certificate → CA certificate → pick the downloaded file.</li>
        <li>Reopen this page in Chrome. If the <code>.local</code> name does not resolve, use the daemon's
          address (https://192.168.x.y:7861).</li>
      </ol>
    </details>
    <details>
      <summary>Desktop browser</summary>
      <ol>
        <li>Import the downloaded file as a trusted certificate authority: Chrome and Edge use the system store
          (macOS Keychain Access: System, "Always Trust"; Windows: Trusted Root Certification Authorities);
          Firefox: Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import.</li>
        <li>Restart the browser and reopen this page.</li>
      </ol>
    </details>
  </section>`;
}

export function PairScreen({ session, onPaired }) {
  const query = new URLSearchParams(window.location.search);
  const [code, setCode] = useState(() => normalizeCode(query.get('code')));
  const [deviceName, setDeviceName] = useState(guessDeviceName);
  const [state, setState] = useState({ busy: false, error: null });
  const linkFingerprint = query.get('fp');

  if (session && session.signed_in) {
    return html`<section class="screen pair stack">
      <h1>Already paired</h1>
      <p>This browser is signed in${session.device_name ? html` as <strong>${session.device_name}</strong>` : ''}.</p>
      <p><a class="button" href="/">Open the app</a></p>
    </section>`;
  }

  const submit = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null });
    const answer = await postPair(normalizeCode(code), deviceName.trim() || guessDeviceName());
    if (answer.error) {
      setState({ busy: false, error: answer.error });
      return;
    }
    setState({ busy: false, error: null });
    if (onPaired) onPaired(answer.paired);
  };
  const error = state.error;
  const attempts = error && Number.isInteger(error.attempts_left) && error.error !== 'locked_out'
    ? ` ${error.attempts_left} attempt(s) left before a 15-minute lockout.` : '';
  return html`<section class="screen pair stack">
    <h1>Pair this device</h1>
    <p>Enter the code that <code>cauldronctl pair</code> shows on the daemon's machine (or scan its QR code with the
      camera: the code is then filled in).</p>
    <form class="card stack" onSubmit=${submit} aria-labelledby="pair-title" novalidate>
      <h2 id="pair-title">Pairing code</h2>
      <div>
        <label for="pair-code">Code</label>
        <input id="pair-code" name="code" value=${code} required autocomplete="one-time-code"
          autocapitalize="characters" spellcheck=${false} inputmode="text" maxlength="12"
          aria-invalid=${error ? 'true' : 'false'} aria-describedby=${error ? 'pair-error' : undefined}
          onInput=${(event) => setCode(event.currentTarget.value)} />
        ${error && html`<p class="error" role="alert" id="pair-error" data-error=${error.error}>
          ${error.message}${attempts}</p>`}
      </div>
      <div>
        <label for="pair-device">Device name</label>
        <input id="pair-device" name="device_name" value=${deviceName} maxlength="64" required
          onInput=${(event) => setDeviceName(event.currentTarget.value)} />
        <p class="muted hint">Shown in <code>cauldronctl devices list</code>, where you can sign it out.</p>
      </div>
      <button type="submit" disabled=${state.busy || normalizeCode(code).length === 0}>
        ${state.busy ? 'Pairing…' : 'Pair'}</button>
    </form>
    <${TrustSteps} session=${session} linkFingerprint=${linkFingerprint} />
  </section>`;
}
