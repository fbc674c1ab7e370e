// The app's service worker (scope /): the offline shell and a bounded cache of viewed thumbnails.
//
// Versions: GET /shell.json names the shell's files and a version (a digest of their bytes). The page registers
// /sw.js?v=<version>, so a new version of the app is a new worker script: it caches every file of that version in a
// cache named after it, takes over at once, and deletes the older shell caches. A page keeps the modules it loaded,
// and the next load is served wholly from the new cache, so no load ever mixes two versions.
//
// Never cached: /rpc (live), full images (/images/...: large, and the thumbnails are what the screens show), and
// every other daemon route (/session, /pair POST, /login, /shell.json ...): those go to the network untouched.
// A classic script (not a module worker) so that older Safari versions run it too.
'use strict';

importScripts('/app/js/thumb_eviction.js'); // self.cauldronThumbsToEvict

const SHELL_PREFIX = 'cauldron-shell-';
const THUMBS_CACHE = 'cauldron-thumbs';
// A 256 px WebP thumbnail is 5-20 KB and a 768 px one up to ~100 KB: 300 entries and 30 MB hold a few gallery pages.
const MAX_THUMBS = 300;
const MAX_THUMB_BYTES = 30 * 1024 * 1024;
const SIZE_HEADER = 'X-Cauldron-Cached-Bytes';
// The app's screens: a navigation to one of them gets the cached shell page (its router takes over).
const SCREEN_PATHS = [/^\/$/, /^\/new$/, /^\/gallery$/, /^\/experiments$/, /^\/experiments\/\d{1,18}$/,
  /^\/signed-out$/, /^\/pair$/];

async function fetchShellDescription() {
  const response = await fetch('/shell.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/shell.json answered ${response.status}`);
  return response.json();
}

// Fetch every file of one version; refuse the version if the daemon changed under us while we fetched (the files
// might then be a mix), so the old worker stays and the next load tries again.
async function installShell() {
  const shell = await fetchShellDescription();
  const cache = await caches.open(SHELL_PREFIX + shell.version);
  await Promise.all(shell.files.map(async (url) => {
    const response = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    await cache.put(url, response);
  }));
  const after = await fetchShellDescription();
  if (after.version !== shell.version) {
    await caches.delete(SHELL_PREFIX + shell.version);
    throw new Error('the app changed while it was being cached');
  }
  return shell.version;
}

let installedVersion = null;

self.addEventListener('install', (event) => {
  event.waitUntil(installShell().then((version) => {
    installedVersion = version;
    return self.skipWaiting();
  }));
});

async function newestShellCache() {
  if (installedVersion) return SHELL_PREFIX + installedVersion;
  // A worker restarted by the browser forgets its variables: its cache is the one its URL names (?v=), or else
  // the newest shell cache (the daemon's version moved on while it installed).
  const names = (await caches.keys()).filter((name) => name.startsWith(SHELL_PREFIX));
  const named = new URL(self.location.href).searchParams.get('v');
  if (named && names.includes(SHELL_PREFIX + named)) installedVersion = named;
  else installedVersion = names.length ? names[names.length - 1].slice(SHELL_PREFIX.length) : null;
  return installedVersion ? SHELL_PREFIX + installedVersion : null;
}

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const keep = await newestShellCache();
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith(SHELL_PREFIX) && name !== keep)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

async function fromShell(request, cacheKey) {
  const name = await newestShellCache();
  if (name) {
    const cached = await (await caches.open(name)).match(cacheKey, { ignoreSearch: true });
    if (cached) return cached;
  }
  return fetch(request);
}

let trimming = null;

function trimThumbs() {
  // One trim at a time, run after a burst of puts rather than once per thumbnail.
  if (!trimming) {
    trimming = (async () => {
      const cache = await caches.open(THUMBS_CACHE);
      const requests = await cache.keys(); // in insertion order: oldest first
      const entries = await Promise.all(requests.map(async (request) => {
        const response = await cache.match(request);
        return { request, bytes: Number(response && response.headers.get(SIZE_HEADER)) || 0 };
      }));
      const evict = self.cauldronThumbsToEvict(entries, MAX_THUMBS, MAX_THUMB_BYTES);
      await Promise.all(evict.map((request) => cache.delete(request)));
    })().finally(() => { trimming = null; });
  }
  return trimming;
}

// A viewed thumbnail stays available offline. A hit is put back at the end, so the eviction order is roughly
// least recently used.
async function thumbnail(event) {
  const cache = await caches.open(THUMBS_CACHE);
  const cached = await cache.match(event.request);
  if (cached) {
    const body = await cached.clone().blob();
    event.waitUntil(cache.delete(event.request).then(() => cache.put(event.request, new Response(body, {
      status: cached.status, headers: cached.headers,
    }))));
    return cached;
  }
  const response = await fetch(event.request);
  if (response.status === 200) {
    const body = await response.clone().blob();
    const headers = new Headers(response.headers);
    headers.set(SIZE_HEADER, String(body.size));
    event.waitUntil(cache.put(event.request, new Response(body, { status: 200, headers })).then(trimThumbs));
  }
  return response;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    if (SCREEN_PATHS.some((pattern) => pattern.test(url.pathname))) event.respondWith(fromShell(request, '/'));
    return;
  }
  if (url.pathname.startsWith('/app/') || url.pathname === '/manifest.webmanifest') {
    event.respondWith(fromShell(request, url.pathname));
  } else if (url.pathname.startsWith('/thumbs/')) {
    event.respondWith(thumbnail(event));
  }
});

// The page asks for a notification when an experiment ends (pwa/js/notify.js shows it through
// registration.showNotification); a tap opens that experiment in an open window of the app, or a new one.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || '/';
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if ('focus' in client) {
        await client.focus();
        if ('navigate' in client) await client.navigate(target);
        return;
      }
    }
    await self.clients.openWindow(target);
  })());
});

