// What every screen shares: the RPC connection, its state, event listeners, queries that refresh themselves on
// events and after a reconnect, and in-app messages. Screens keep no copy of daemon state beyond what a query
// returned, so a reload or another device sees the same thing.
import { createContext, html, useCallback, useContext, useEffect, useRef, useState } from './lib.js';

export const RpcContext = createContext(null);
export const ToastContext = createContext(null);

// The event types the app listens to. `job.preview` is added only while a screen wants previews (they cost the
// daemon work), so it is not in this list.
export const APP_EVENT_TYPES = [
  'experiment.created', 'experiment.finished', 'experiment.cancelled', 'experiment.priority', 'experiment.retried',
  'job.started', 'job.progress', 'job.done', 'job.failed', 'job.cancelled', 'job.requeued',
  'queue.paused', 'queue.resumed', 'events.dropped',
];

export function useRpc() {
  return useContext(RpcContext);
}

export function useConnectionState() {
  const rpc = useRpc();
  const [state, setState] = useState(rpc ? rpc.state : 'closed');
  useEffect(() => {
    if (!rpc) return undefined;
    setState(rpc.state); // the socket may have opened between the render and this effect: that change was missed
    return rpc.onState((next) => setState(next));
  }, [rpc]);
  return state;
}

// Calls `handler` for each event of `type` ('*' for all, 'rpc.resync' after a reconnect).
export function useEvent(type, handler) {
  const rpc = useRpc();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => (rpc ? rpc.onEvent(type, (event) => latest.current(event)) : undefined), [rpc, type]);
}

// An RPC call whose result a screen shows. It runs again after a reconnect and, coalesced, after any event in
// `refreshOn`. `params` is compared by value.
export function useQuery(method, params = {}, { refreshOn = [], enabled = true, coalesceMs = 250 } = {}) {
  const rpc = useRpc();
  const key = JSON.stringify(params);
  const [state, setState] = useState({ data: null, error: null, loading: enabled });
  const generation = useRef(0);
  const load = useCallback(async () => {
    if (!rpc || !enabled || rpc.state !== 'open') return;
    const mine = ++generation.current;
    setState((old) => ({ ...old, loading: true }));
    try {
      const data = await rpc.call(method, JSON.parse(key));
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((old) => ({ data: old.data, error, loading: false }));
    }
  }, [rpc, method, key, enabled]);
  useEffect(() => {
    load();
    if (!rpc) return undefined;
    let timer = null;
    const soon = () => {
      if (timer === null) timer = setTimeout(() => { timer = null; load(); }, coalesceMs);
    };
    const offs = [rpc.onEvent('rpc.resync', load), ...refreshOn.map((type) => rpc.onEvent(type, soon))];
    return () => {
      clearTimeout(timer);
      offs.forEach((off) => off());
    };
  }, [load, rpc, refreshOn.join(',')]);
  return { ...state, reload: load };
}

// Run an action (an RPC call), keeping its error next to the control that caused it.
export function useAction(run) {
  const [state, setState] = useState({ busy: false, error: null });
  const act = useCallback(async (...args) => {
    setState({ busy: true, error: null });
    try {
      const result = await run(...args);
      setState({ busy: false, error: null });
      return result;
    } catch (error) {
      setState({ busy: false, error });
      return undefined;
    }
  }, [run]);
  return [act, state];
}

export function useToasts() {
  return useContext(ToastContext);
}

// In-app messages: a short text, optionally with one action ("Undo"). Announced to screen readers.
export function ToastHost({ children }) {
  const [toasts, setToasts] = useState([]);
  const api = useRef(null);
  if (api.current === null) {
    let next = 1;
    api.current = {
      show(text, { action = null, timeoutMs = 6000, kind = 'info' } = {}) {
        const id = next++;
        setToasts((list) => [...list, { id, text, action, kind }]);
        if (timeoutMs) setTimeout(() => api.current.dismiss(id), timeoutMs);
        return id;
      },
      dismiss(id) {
        setToasts((list) => list.filter((toast) => toast.id !== id));
      },
    };
  }
  return html`
    <${ToastContext.Provider} value=${api.current}>
      ${children}
      <div class="toasts" role="status" aria-live="polite">
        ${toasts.map((toast) => html`
          <div class=${`toast toast-${toast.kind}`} key=${toast.id}>
            <span>${toast.text}</span>
            ${toast.action && html`<button type="button" onClick=${() => { api.current.dismiss(toast.id); toast.action.run(); }}>
              ${toast.action.label}</button>`}
            <button type="button" class="ghost" aria-label="Dismiss" onClick=${() => api.current.dismiss(toast.id)}>×</button>
          </div>`)}
      </div>
    <//>`;
}

// What the user is still typing, kept in localStorage so a reconnect, a reload or a locked phone loses nothing.
// Returns [value, setValue, clear]: `setValue` takes a value or an updater like useState's; call `clear()` once the
// form was submitted (it forgets the stored draft and goes back to `initial`). `initial` is used only when nothing is
// stored under `key`; a stored value that no longer parses is ignored rather than breaking the screen.
const DRAFT_PREFIX = 'cauldron.draft.';

function readDraft(key, initial) {
  try {
    const stored = window.localStorage.getItem(DRAFT_PREFIX + key);
    return stored === null ? initial : JSON.parse(stored);
  } catch (error) {
    return initial;
  }
}

export function useDraft(key, initial) {
  // Kept with its key, so that a screen switching drafts (another experiment's "run again") reads the new one.
  const [draft, setDraft] = useState(() => ({ key, value: readDraft(key, initial) }));
  const value = draft.key === key ? draft.value : readDraft(key, initial);
  const initialRef = useRef(initial);
  initialRef.current = initial;
  const update = useCallback((next) => {
    setDraft((old) => {
      const previous = old.key === key ? old.value : readDraft(key, initialRef.current);
      const resolved = typeof next === 'function' ? next(previous) : next;
      try {
        window.localStorage.setItem(DRAFT_PREFIX + key, JSON.stringify(resolved));
      } catch (error) {
        console.warn('could not keep the draft', error); // storage full or disabled: the form still works
      }
      return { key, value: resolved };
    });
  }, [key]);
  const clear = useCallback(() => {
    try {
      window.localStorage.removeItem(DRAFT_PREFIX + key);
    } catch (error) {
      // storage disabled: nothing was kept
    }
    setDraft({ key, value: initialRef.current });
  }, [key]);
  return [value, update, clear];
}
