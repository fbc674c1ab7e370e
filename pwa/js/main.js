// The app's root: find out whether this browser is signed in (/session), then the pair screen, the signed-out
// screen, the offline shell (the daemon is unreachable: retrying) or the app with its screens, navigation,
// connection banner, notifications and in-app messages.
import { html, render, useCallback, useEffect, useState, LocationProvider, Router, Route, useLocation } from './lib.js';
import { RpcClient } from './rpc.js';
import { RpcContext, ToastHost, APP_EVENT_TYPES, useConnectionState, useRpc } from './store.js';
import { fetchSession, onWake } from './session.js';
import { reconnectDelay } from './backoff.js';
import { registerServiceWorker, forgetCachedThumbnails } from './service_worker.js';
import { NotifyControl, useExperimentNotifications } from './notify.js';
import { PairScreen } from './screens/pair.js';
import { SignedOutScreen } from './screens/signed_out.js';
import { NowScreen } from './screens/now.js';
import { NewExperimentScreen } from './screens/new_experiment.js';
import { ExperimentsScreen } from './screens/experiments.js';
import { ExperimentScreen } from './screens/experiment.js';
import { GalleryScreen } from './screens/gallery.js';

const NAV = [
  { href: '/', label: 'Now', icon: '▶' },
  { href: '/new', label: 'New', icon: '+' },
  { href: '/experiments', label: 'Experiments', icon: '▦' },
  { href: '/gallery', label: 'Gallery', icon: '▤' },
];

function isCurrent(href, path) {
  return href === '/' ? path === '/' : path === href || path.startsWith(href + '/');
}

function Navigation() {
  const { path } = useLocation();
  return html`
    <nav class="tabs" aria-label="Screens">
      ${NAV.map((item) => html`
        <a href=${item.href} class="tab" aria-current=${isCurrent(item.href, path) ? 'page' : undefined}>
          <span class="tab-icon" aria-hidden="true">${item.icon}</span><span>${item.label}</span>
        </a>`)}
    </nav>`;
}

function Topbar({ children }) {
  return html`<header class="topbar"><a href="/" class="brand">Shadow Cauldron</a>
    <span class="topbar-end">${children}</span></header>`;
}

function UnreachableBanner({ onRetry }) {
  return html`<div class="banner row" role="status" data-connection="closed">
    <span class="banner-text">The daemon is unreachable. Retrying…</span>
    <button type="button" class="secondary" onClick=${onRetry}>Retry now</button>
  </div>`;
}

function ConnectionBanner() {
  const rpc = useRpc();
  const state = useConnectionState();
  if (state === 'open' || state === 'signed-out') return null;
  // Before the first connection "connecting"; after a drop the retries alternate connecting/closed, and the
  // banner keeps saying what matters: unreachable, retrying.
  if (state === 'connecting' && !rpc.lastClose) {
    return html`<div class="banner" role="status" data-connection="connecting">Connecting to the daemon…</div>`;
  }
  return html`<${UnreachableBanner} onRetry=${() => rpc.reconnectNow()} />`;
}

function SignedIn() {
  useExperimentNotifications();
  return html`
    <div class="app">
      <${Topbar}><${NotifyControl} /><//>
      <${ConnectionBanner} />
      <main id="main" class="content">
        <${Router}>
          <${Route} path="/" component=${NowScreen} />
          <${Route} path="/new" component=${NewExperimentScreen} />
          <${Route} path="/experiments" component=${ExperimentsScreen} />
          <${Route} path="/experiments/:id" component=${ExperimentScreen} />
          <${Route} path="/gallery" component=${GalleryScreen} />
          <${Route} path="/signed-out" component=${SignedOutScreen} />
          <${Route} default component=${NowScreen} />
        <//>
      </main>
      <${Navigation} />
    </div>`;
}

// Outside the signed-in app: the same top bar, one screen, no navigation (nothing else can be shown).
function Standalone({ children }) {
  return html`<div class="app app-standalone"><${Topbar} />${children}</div>`;
}

// /session, asked again with backoff while the daemon is unreachable and at once when the device wakes up.
// `null`: unreachable (the offline shell); `undefined`: not asked yet.
function useSession() {
  const [session, setSession] = useState(undefined);
  const refresh = useCallback(async () => {
    const found = await fetchSession();
    // A signed-in app that loses the daemon keeps its screens (with the banner) rather than going blank.
    setSession((old) => (found === null && old ? old : found));
    return found;
  }, []);
  useEffect(() => {
    let attempt = 0;
    let timer = null;
    let stopped = false;
    const ask = async () => {
      clearTimeout(timer);
      const found = await refresh();
      if (stopped) return;
      if (found === null) timer = setTimeout(ask, reconnectDelay(attempt++));
      else attempt = 0;
    };
    ask();
    const off = onWake(ask);
    return () => { stopped = true; clearTimeout(timer); off(); };
  }, [refresh]);
  return [session, refresh];
}

function Root() {
  const { path, route } = useLocation();
  const [session, refresh] = useSession();
  const [rpc, setRpc] = useState(null);
  const [revoked, setRevoked] = useState(false);
  const signedIn = Boolean(session && session.signed_in);
  useEffect(() => {
    if (!signedIn) return undefined;
    const client = new RpcClient().start();
    client.subscribe(APP_EVENT_TYPES);
    const offState = client.onState((state) => {
      if (state === 'signed-out') setRevoked(true);
      // A socket refused at the upgrade (revoked while this device was away) closes without a reason; /session
      // tells a revoked device from an unreachable daemon. After a revocation it also ends this client (the
      // session is no longer signed in), so pairing again starts a new one.
      if (state === 'closed' || state === 'signed-out') refresh();
    });
    const offWake = onWake(() => client.reconnectNow());
    setRpc(client);
    return () => { offState(); offWake(); client.stop(); setRpc(null); };
  }, [signedIn]);
  // /signed-out is also a link target (another screen may send a refused device there).
  const sentToSignedOut = Boolean(session && !session.signed_in && path === '/signed-out');
  const signedOut = revoked || sentToSignedOut || Boolean(session && session.signed_out);
  useEffect(() => {
    if (signedOut) forgetCachedThumbnails();
  }, [signedOut]);

  const paired = async () => {
    setRevoked(false);
    await refresh();
    route('/');
  };
  if (session === undefined) {
    return html`<${Standalone}><main class="content"><p class="muted">Starting…</p></main><//>`;
  }
  if (session === null) {
    return html`<${Standalone}><${UnreachableBanner} onRetry=${refresh} />
      <main id="main" class="content"><section class="screen stack offline">
        <h1>Waiting for the daemon</h1>
        <p>This device cannot reach the Shadow Cauldron daemon right now: check the Wi-Fi, or that the daemon's machine
          is on. The app keeps trying and opens by itself once the daemon answers.</p>
      </section></main><//>`;
  }
  if (path === '/pair') {
    return html`<${Standalone}><main id="main" class="content">
      <${PairScreen} session=${revoked ? { ...session, signed_in: false } : session} onPaired=${paired} /></main><//>`;
  }
  if (signedOut) return html`<${Standalone}><main id="main" class="content"><${SignedOutScreen} /></main><//>`;
  if (!signedIn) {
    return html`<${Standalone}><main id="main" class="content">
      <${PairScreen} session=${session} onPaired=${paired} /></main><//>`;
  }
  if (!rpc) return null;
  return html`<${RpcContext.Provider} value=${rpc}><${SignedIn} /><//>`;
}

function App() {
  return html`<${LocationProvider}><${ToastHost}><${Root} /><//><//>`;
}

render(html`<${App} />`, document.getElementById('root'));
registerServiceWorker();
