// "Your experiment finished": a system notification through the service worker when the user allowed it, an
// in-app message otherwise. Only while the app is open somewhere (a tab, an installed app in the background):
// Web Push would need a push service on the internet, which this LAN-only daemon does not use (docs/pwa.md).
import { html, useCallback, useRef, useState } from './lib.js';
import { useEvent, useRpc, useToasts } from './store.js';

export function notificationsSupported() {
  return typeof Notification !== 'undefined' && 'serviceWorker' in navigator;
}

function permissionNow() {
  return notificationsSupported() ? Notification.permission : 'unsupported';
}

// What to say about an ended experiment, from its row (experiments.get): {title, body}.
export function finishedMessage(experiment, status) {
  const name = experiment && experiment.name ? experiment.name : 'An experiment';
  const counts = (experiment && experiment.counts) || {};
  const failed = counts.failed || 0;
  const made = counts.done || 0;
  if (status === 'failed') return { title: `${name} failed`, body: `All ${failed} image(s) failed.` };
  const tail = failed ? `, ${failed} failed` : '';
  return { title: `${name} finished`, body: `${made} image(s) made${tail}.` };
}

async function showSystemNotification({ title, body, url, tag }) {
  const registration = await navigator.serviceWorker.ready;
  await registration.showNotification(title, { body, tag, data: { url }, icon: '/app/icons/icon-192.png' });
}

// Drawn, not an emoji: not every system has an emoji font (a missing glyph shows as a box).
const BELL = html`<svg aria-hidden="true" focusable="false" width="18" height="18" viewBox="0 0 24 24"
  fill="currentColor"><path d="M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6v-5a6 6 0 0 0-5-5.9V4a1 1 0 1 0-2 0v1.1A6 6
  0 0 0 6 11v5l-2 2v1h16v-1z" /></svg>`;

// The control that asks for permission: browsers allow the question only from a user gesture (a tap).
export function NotifyControl() {
  const [permission, setPermission] = useState(permissionNow);
  if (permission !== 'default') return null;
  const ask = async () => setPermission(await Notification.requestPermission());
  return html`<button type="button" class="secondary notify-control" onClick=${ask}
    aria-label="Notify me when experiments finish">${BELL} Notify me</button>`;
}

// Listens for ended experiments (and the first failed job of each) and tells the user.
export function useExperimentNotifications() {
  const rpc = useRpc();
  const toasts = useToasts();
  const failureTold = useRef(new Set());
  const tell = useCallback(async (message) => {
    if (permissionNow() === 'granted') {
      try {
        await showSystemNotification(message);
        return;
      } catch (error) {
        console.warn('system notification failed; showing it in the app', error);
      }
    }
    if (toasts) toasts.show(`${message.title}: ${message.body}`, { kind: message.kind || 'info' });
  }, [toasts]);

  useEvent('experiment.finished', async (event) => {
    if (event.retained || !rpc) return; // recovered at start-up: old news
    let experiment = null;
    try {
      const params = { experiment_id: event.experiment_id, jobs_limit: 1 };
      experiment = (await rpc.call('experiments.get', params)).experiment;
    } catch (error) {
      // the name is a nicety: say it without
    }
    const text = finishedMessage(experiment, event.status);
    await tell({
      ...text,
      url: `/experiments/${event.experiment_id}`,
      tag: `experiment-${event.experiment_id}`,
      kind: event.status === 'failed' ? 'error' : 'info',
    });
  });

  useEvent('job.failed', async (event) => {
    // Once per experiment: a sweep whose every cell fails must not bury the user in messages.
    if (event.retained || failureTold.current.has(event.experiment_id)) return;
    failureTold.current.add(event.experiment_id);
    await tell({
      title: `An image of experiment ${event.experiment_id} failed`,
      body: String(event.error || 'no reason given'),
      url: `/experiments/${event.experiment_id}`,
      tag: `experiment-${event.experiment_id}-failure`,
      kind: 'error',
    });
  });
}
