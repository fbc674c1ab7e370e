// msgpack-RPC over the daemon's WebSocket (docs/rpc.md), authenticated by the pairing cookie the browser sends
// with the upgrade. Reconnects with backoff; after every reconnect it re-subscribes and tells listeners to
// resynchronise, because events sent while the socket was down are gone.
import { encode, decode } from '../vendor/msgpack/index.mjs';
import { reconnectDelay } from './backoff.js';

const REQUEST = 0;
const RESPONSE = 1;
const NOTIFICATION = 2;
const CALL_TIMEOUT_MS = 60_000;

export class RpcError extends Error {
  constructor(code, message, data = null) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }

  // The message for one field of a form: invalid_params data lists {field, message}; `field` may be nested
  // ("axes.0.values"), so a prefix match finds errors for sub-fields too.
  fieldMessage(field) {
    if (this.code !== 'invalid_params' || !Array.isArray(this.data)) return null;
    const hit = this.data.find((f) => f && (f.field === field || String(f.field).startsWith(field + '.')));
    return hit ? hit.message : null;
  }
}

export function socketUrl(location = window.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/rpc`;
}

export class RpcClient {
  constructor({ url = socketUrl(), delay = reconnectDelay } = {}) {
    this.url = url;
    this.delay = delay;
    this.state = 'connecting'; // connecting | open | closed | signed-out
    this.lastClose = null;
    this._socket = null;
    this._nextId = 1;
    this._pending = new Map();
    this._listeners = new Map(); // event type or '*' -> Set of functions
    this._stateListeners = new Set();
    this._subscribed = null; // the types last asked for, re-sent on every reconnect
    this._attempt = 0;
    this._timer = null;
    this._stopped = false;
  }

  start() {
    this._stopped = false;
    this._open();
    return this;
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this._socket) this._socket.close(1000, 'app closed');
  }

  // Reconnect now (the page became visible again, the network came back) instead of waiting out the backoff.
  reconnectNow() {
    if (this._stopped || this.state === 'open' || this.state === 'signed-out') return;
    clearTimeout(this._timer);
    this._attempt = 0;
    this._open();
  }

  call(method, params = {}) {
    if (this.state !== 'open') {
      return Promise.reject(new RpcError('disconnected', 'not connected to the daemon; retrying'));
    }
    const id = this._nextId++;
    const frame = encode([REQUEST, id, method, [params]]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RpcError('timeout', `${method}: no answer from the daemon`));
      }, CALL_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
      this._socket.send(frame);
    });
  }

  // Which event types this connection receives; kept and re-sent after a reconnect. `job.preview` comes only when
  // named here.
  async subscribe(types) {
    this._subscribed = types;
    if (this.state === 'open') await this.call('events.subscribe', types ? { types } : {});
  }

  onEvent(type, listener) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(listener);
    return () => this._listeners.get(type).delete(listener);
  }

  onState(listener) {
    this._stateListeners.add(listener);
    return () => this._stateListeners.delete(listener);
  }

  _setState(state) {
    this.state = state;
    for (const listener of [...this._stateListeners]) listener(state, this);
  }

  _open() {
    this._setState('connecting');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this._scheduleReconnect();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this._socket = socket;
    socket.onopen = async () => {
      this._attempt = 0;
      this._setState('open');
      if (this._subscribed !== null) {
        try {
          await this.call('events.subscribe', this._subscribed ? { types: this._subscribed } : {});
        } catch (error) {
          console.warn('re-subscribing failed', error);
        }
      }
      this._emit({ type: 'rpc.resync' });
    };
    socket.onmessage = (message) => this._receive(message.data);
    socket.onclose = (event) => {
      this._socket = null;
      this.lastClose = { code: event.code, reason: event.reason };
      for (const [, pending] of this._pending) {
        clearTimeout(pending.timer);
        pending.reject(new RpcError('disconnected', 'the connection to the daemon dropped'));
      }
      this._pending.clear();
      if (event.code === 1008 && /revoked/i.test(event.reason)) {
        this._setState('signed-out');
        return;
      }
      if (!this._stopped) this._scheduleReconnect();
      else this._setState('closed');
    };
  }

  _scheduleReconnect() {
    this._setState('closed');
    const wait = this.delay(this._attempt++);
    this.nextRetryAt = Date.now() + wait;
    this._timer = setTimeout(() => this._open(), wait);
  }

  _receive(data) {
    let message;
    try {
      message = decode(new Uint8Array(data));
    } catch (error) {
      console.warn('undecodable frame from the daemon', error);
      return;
    }
    if (!Array.isArray(message)) return;
    if (message[0] === RESPONSE) {
      const [, id, error, result] = message;
      const pending = this._pending.get(id);
      if (!pending) return;
      this._pending.delete(id);
      clearTimeout(pending.timer);
      if (error) pending.reject(new RpcError(error.code, error.message, error.data));
      else pending.resolve(result);
    } else if (message[0] === NOTIFICATION && message[1] === 'event') {
      for (const event of message[2] || []) this._emit(event);
    }
  }

  _emit(event) {
    for (const key of [event.type, '*']) {
      for (const listener of [...(this._listeners.get(key) || [])]) {
        try {
          listener(event);
        } catch (error) {
          console.error('event listener failed', error);
        }
      }
    }
  }
}
