// Registers the service worker (pwa/sw.js, served at /sw.js) under the shell's current version, so that a new
// version of the app is a new worker: the browser installs it in the background and the next load uses it
// (sw.js explains the caches). Offline, /shell.json does not answer and the installed worker simply stays.
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  let version;
  try {
    const response = await fetch('/shell.json', { cache: 'no-store' });
    if (!response.ok) return null;
    version = (await response.json()).version;
  } catch (error) {
    return null; // the daemon is unreachable: keep whatever worker is installed
  }
  try {
    return await navigator.serviceWorker.register(`/sw.js?v=${encodeURIComponent(version)}`, { scope: '/' });
  } catch (error) {
    console.warn('the service worker could not be registered', error); // e.g. not a secure context
    return null;
  }
}

// After a device is signed out, cached thumbnails must not outlive its access.
export async function forgetCachedThumbnails() {
  if (!('caches' in window)) return;
  try {
    await caches.delete('cauldron-thumbs');
  } catch (error) {
    console.warn('could not clear the thumbnail cache', error);
  }
}
