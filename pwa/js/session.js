// Whether this browser is signed in, from the daemon's open /session route: signed in, signed out (its device
// token was revoked), or not paired yet. `null` when the daemon cannot be reached.
export async function fetchSession() {
  try {
    const response = await fetch('/session', { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) return null;
    return await response.json();
  } catch (error) {
    return null;
  }
}

// Run `wake` when the device comes back: the network returns or the page is shown again (a phone unlocked).
export function onWake(wake) {
  const visible = () => {
    if (document.visibilityState === 'visible') wake();
  };
  window.addEventListener('online', wake);
  document.addEventListener('visibilitychange', visible);
  return () => {
    window.removeEventListener('online', wake);
    document.removeEventListener('visibilitychange', visible);
  };
}
