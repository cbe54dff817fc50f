// The MoFang JSON-RPC API as the pages use it: POST / with a JSON-RPC 2.0
// request, the access token in "Authorization: jwt <token>", and every
// result carrying errno (1000 = ok) and errmsg. Nothing here is private to
// the pages: an app can do the same.

import { locale, t } from './i18n/index.js';

const SESSION_KEY = 'mofang.session';

// Errnos the pages act on (README, "Errors").
export const Errno = {
  OK: 1000,
  INVALID: 1001,
  NAME_TAKEN: 1002,
  SLOW_DOWN: 1003,
  WRONG_LOGIN: 1004,
  LOGIN_AGAIN: 1005,
  NOT_YOURS: 1006,
  NO_ROOM: 1007,
  WRONG_ROOM_PASSWORD: 1008,
  ROOM_ENDED: 1009,
  NO_USER: 1010,
  NEEDS_SOCKET: 1011,
  NOT_LIVE: 1012,
  TOO_MANY_ROOMS: 1013,
  JOIN_FIRST: 1014,
  NO_GIFT: 1015,
  NO_COINS: 1016,
  BUSY: 1022,
  NO_CALL: 1023,
  NOT_IN_ROOM: 1024,
  COHOST_ON: 1025,
  NO_COHOST: 1026,
  NETWORK: 0, // no answer: the page's own errno for a network failure
};

// messages: the errnos the pages explain in their own words, by catalogue key.
const messages = {
  [Errno.NAME_TAKEN]: 'errno.1002',
  [Errno.SLOW_DOWN]: 'errno.1003',
  [Errno.WRONG_LOGIN]: 'errno.1004',
  [Errno.LOGIN_AGAIN]: 'errno.1005',
  [Errno.NOT_YOURS]: 'errno.1006',
  [Errno.NO_ROOM]: 'errno.1007',
  [Errno.WRONG_ROOM_PASSWORD]: 'errno.1008',
  [Errno.ROOM_ENDED]: 'errno.1009',
  [Errno.NO_USER]: 'errno.1010',
  [Errno.NOT_LIVE]: 'errno.1012',
  [Errno.TOO_MANY_ROOMS]: 'errno.1013',
  [Errno.JOIN_FIRST]: 'errno.1014',
  [Errno.NO_GIFT]: 'errno.1015',
  [Errno.NO_COINS]: 'errno.1016',
  [Errno.BUSY]: 'errno.1022',
  [Errno.NO_CALL]: 'errno.1023',
  [Errno.NOT_IN_ROOM]: 'errno.1024',
  [Errno.COHOST_ON]: 'errno.1025',
  [Errno.NO_COHOST]: 'errno.1026',
  [Errno.NETWORK]: 'errno.0',
};

// ApiError is a call that did not succeed: errno says why.
export class ApiError extends Error {
  constructor(errno, message, method) {
    super(messages[errno] ? t(messages[errno]) : message || t('errno.n', { errno }));
    this.errno = errno;
    this.method = method;
    this.serverMessage = message;
  }
}

// The logged-in user's tokens and profile, kept in localStorage.
export const session = {
  get() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
      return s && typeof s.access_token === 'string' ? s : null;
    } catch {
      return null;
    }
  },
  save(data) {
    const s = {
      access_token: data.access_token,
      refresh_token: data.refresh_token,
      user: data.user,
    };
    localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    return s;
  },
  setUser(user) {
    const s = this.get();
    if (s) {
      s.user = { ...s.user, ...user };
      localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    }
  },
  clear() {
    localStorage.removeItem(SESSION_KEY);
  },
};

let nextId = 1;
let loginExpired = () => {};

// onLoginExpired sets what happens when the login cannot be renewed
// (errno 1005 and the refresh token failed too): the router shows the
// log-in page.
export function onLoginExpired(fn) {
  loginExpired = fn;
}

// post sends one JSON-RPC request and returns its result object.
async function post(method, params, token, timeoutMs = 10000) {
  const headers = { 'Content-Type': 'application/json', 'Accept-Language': locale() }; // errmsg in the pages' language
  if (token) headers.Authorization = 'jwt ' + token;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let body;
  try {
    const res = await fetch('/', {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: String(nextId++), method, params }),
      signal: ctl.signal,
    });
    body = await res.json();
  } catch (e) {
    throw new ApiError(Errno.NETWORK, String(e), method);
  } finally {
    clearTimeout(timer);
  }
  if (body.error) {
    throw new ApiError(-1, body.error.message + (body.error.data ? ': ' + body.error.data : ''), method);
  }
  return body.result;
}

let refreshing = null;

// refreshSession trades the refresh token for new tokens, once at a time
// however many calls found the access token expired. It resolves to
// whether the user is still logged in.
export function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const s = session.get();
      if (!s || !s.refresh_token) return false;
      try {
        const r = await post('User.refresh', { refresh_token: s.refresh_token });
        if (r.errno !== Errno.OK) return false;
        session.save(r.data);
        return true;
      } catch (e) {
        // A network failure is not a logout.
        if (e.errno === Errno.NETWORK) throw e;
        return false;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// expire ends the session and sends the user to log in.
export function expire() {
  session.clear();
  loginExpired(t(messages[Errno.LOGIN_AGAIN]));
}

// call calls a method and returns its result; a result whose errno is not
// 1000 is thrown as an ApiError. An expired access token is renewed once
// with the refresh token; when that fails the user is sent to log in.
export async function call(method, params = {}, { auth = true } = {}) {
  const token = auth ? session.get()?.access_token : undefined;
  let r = await post(method, params, token);
  if (auth && r.errno === Errno.LOGIN_AGAIN) {
    if (await refreshSession()) {
      r = await post(method, params, session.get().access_token);
    }
    if (r.errno === Errno.LOGIN_AGAIN) {
      expire();
    }
  }
  if (r.errno !== Errno.OK) throw new ApiError(r.errno, r.errmsg, method);
  return r;
}

// socketURL is the websocket URL of the API with the access token (a
// browser cannot set headers on a websocket).
export function socketURL() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = session.get()?.access_token || '';
  return `${proto}//${location.host}/?token=${encodeURIComponent(token)}`;
}
