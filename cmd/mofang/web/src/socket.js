// RpcSocket is the API's websocket: JSON-RPC calls with their answers
// matched by id, notifications (Live.room.events) passed to onNotify, and
// a reconnect with exponential backoff whenever the connection drops.
// Whoever uses it re-joins its rooms in onOpen, which runs on every
// (re)connection.

import { ApiError, Errno, expire, refreshSession, socketURL } from './api.js';

const PING_EVERY = 20000; // a Server.ping keeps NATs open and finds dead links
const CALL_TIMEOUT = 10000;
const MAX_BACKOFF = 10000;

export class RpcSocket {
  // onOpen(socket) runs after each connection; onNotify(method, params)
  // for each notification; onState(state, detail) on 'connecting',
  // 'open', 'reconnecting' (with the delay in ms) and 'closed'.
  constructor({ onOpen, onNotify, onState }) {
    this.onOpen = onOpen || (() => {});
    this.onNotify = onNotify || (() => {});
    this.onState = onState || (() => {});
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.stopped = true;
    this.timer = null;
    this.pinger = null;
    this.onOnline = () => this.reconnectNow();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, 'bye');
      this.ws = null;
    }
    this.failPending('closed');
    this.onState('closed');
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting', 0);
    let ws;
    try {
      ws = new WebSocket(socketURL());
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      this.onState('open');
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.ping(), PING_EVERY);
      try {
        await this.onOpen(this);
        this.attempt = 0; // a healthy connection resets the backoff
      } catch (e) {
        if (e.errno === Errno.LOGIN_AGAIN) return; // handled in call
        // Joining failed for a reason the owner handles; keep the link.
      }
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      this.failPending('connection lost');
      if (!this.stopped) this.scheduleReconnect();
    };
    ws.onerror = () => {}; // onclose follows
  }

  scheduleReconnect() {
    const base = Math.min(MAX_BACKOFF, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.onState('reconnecting', delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // reconnectNow drops the current connection (if any) and connects again
  // at once: after the browser comes back online or the token changed.
  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000, 'reconnecting');
      clearInterval(this.pinger);
      this.failPending('reconnecting');
    }
    this.connect();
  }

  failPending(reason) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ApiError(Errno.NETWORK, reason, p.method));
    }
    this.pending.clear();
  }

  receive(data) {
    let msgs;
    try {
      msgs = JSON.parse(data);
    } catch {
      return;
    }
    for (const m of Array.isArray(msgs) ? msgs : [msgs]) {
      if (m.id !== undefined && m.id !== null && this.pending.has(m.id)) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.error) p.reject(new ApiError(-1, m.error.message, p.method));
        else p.resolve(m.result);
      } else if (m.method) {
        try {
          this.onNotify(m.method, m.params);
        } catch (e) {
          console.error('MoFang: handling', m.method, e);
        }
      }
    }
  }

  // send sends one call and resolves to its result object, errno and all.
  send(method, params) {
    if (!this.open) {
      return Promise.reject(new ApiError(Errno.NETWORK, 'not connected', method));
    }
    const id = 's' + this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError(Errno.NETWORK, 'no answer', method));
        // No answer in time: the link is probably dead.
        this.reconnectNow();
      }, CALL_TIMEOUT);
      this.pending.set(id, { resolve, reject, timer, method });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  // call is send that throws an ApiError unless errno is 1000. An expired
  // token is renewed and the socket reconnected with the new one (the
  // owner re-joins in onOpen); when renewing fails, the user logs in again.
  async call(method, params = {}) {
    const r = await this.send(method, params);
    if (r.errno === Errno.LOGIN_AGAIN) {
      let renewed = false;
      try {
        renewed = await refreshSession();
      } catch {
        // Network trouble: the reconnect loop will try again.
      }
      if (renewed) {
        this.reconnectNow();
      } else {
        expire();
      }
    }
    if (r.errno !== Errno.OK) throw new ApiError(r.errno, r.errmsg, method);
    return r;
  }

  ping() {
    if (this.open) this.send('Server.ping', {}).catch(() => {});
  }
}
