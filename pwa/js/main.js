// The app's root: find out whether this browser is signed in, then either the pair screen or the app with its
// screens, navigation, connection banner and in-app messages.
import { html, render, useEffect, useState, LocationProvider, Router, Route, useLocation } from './lib.js';
import { RpcClient } from './rpc.js';
import { RpcContext, ToastHost, APP_EVENT_TYPES, useConnectionState } from './store.js';
import { fetchSession } from './session.js';
import { reconnectDelay } from './backoff.js';
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

function ConnectionBanner() {
  const state = useConnectionState();
  if (state === 'open' || state === 'signed-out') return null;
  const text = state === 'connecting' ? 'Connecting to the daemon…' : 'The daemon is unreachable. Retrying…';
  return html`<div class="banner" role="status" data-connection=${state}>${text}</div>`;
}

function SignedIn({ rpc }) {
  const state = useConnectionState();
  if (state === 'signed-out') return html`<${SignedOutScreen} />`;
  return html`
    <div class="app">
      <header class="topbar"><a href="/" class="brand">Shadow Cauldron</a></header>
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

function App() {
  const [session, setSession] = useState(undefined); // undefined: asking; null: daemon unreachable
  const [rpc, setRpc] = useState(null);
  useEffect(() => {
    let attempt = 0;
    let timer = null;
    const ask = async () => {
      const found = await fetchSession();
      setSession(found);
      if (found === null) timer = setTimeout(ask, reconnectDelay(attempt++));
    };
    ask();
    return () => clearTimeout(timer);
  }, []);
  useEffect(() => {
    if (!session || !session.signed_in) return undefined;
    const client = new RpcClient().start();
    client.subscribe(APP_EVENT_TYPES);
    const wake = () => client.reconnectNow();
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && wake());
    setRpc(client);
    return () => { window.removeEventListener('online', wake); client.stop(); };
  }, [session && session.signed_in]);

  let body;
  if (session === undefined) body = html`<main class="content"><p class="muted">Starting…</p></main>`;
  else if (session === null) {
    body = html`<main class="content"><div class="banner" role="status" data-connection="closed">
      The daemon is unreachable. Retrying…</div></main>`;
  } else if (session.signed_out) body = html`<${SignedOutScreen} />`;
  else if (!session.signed_in) body = html`<${PairScreen} session=${session} onPaired=${() => fetchSession().then(setSession)} />`;
  else if (rpc) body = html`<${RpcContext.Provider} value=${rpc}><${SignedIn} rpc=${rpc} /><//>`;
  else body = null;
  return html`<${LocationProvider}><${ToastHost}>${body}<//><//>`;
}

render(html`<${App} />`, document.getElementById('root'));
