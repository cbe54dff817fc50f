// The MoFang JSON-RPC API as the pages use it: POST / with a JSON-RPC 2.0
// request, the access token in "Authorization: jwt <token>", and every
// result carrying errno (1000 = ok) and errmsg. Nothing here is private to
// the pages: an app can do the same.

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

const messages = {
  [Errno.NAME_TAKEN]: 'That user name is taken. Pick another one.',
  [Errno.SLOW_DOWN]: 'Too many attempts. Wait a moment and try again.',
  [Errno.WRONG_LOGIN]: 'Wrong user name or password.',
  [Errno.LOGIN_AGAIN]: 'Your login has expired. Please log in again.',
  [Errno.NOT_YOURS]: 'Not allowed.',
  [Errno.NO_ROOM]: 'This room does not exist.',
  [Errno.WRONG_ROOM_PASSWORD]: 'Wrong room password.',
  [Errno.ROOM_ENDED]: 'This room has ended.',
  [Errno.NO_USER]: 'This user does not exist.',
  [Errno.NOT_LIVE]: 'The room is not live right now.',
  [Errno.TOO_MANY_ROOMS]: 'You are in too many rooms at once.',
  [Errno.JOIN_FIRST]: 'Not in the room yet: reconnecting.',
  [Errno.NO_GIFT]: 'That gift is not available.',
  [Errno.NO_COINS]: 'Not enough coins. Recharge first.',
  [Errno.BUSY]: 'Busy: in another call.',
  [Errno.NO_CALL]: 'The call has ended.',
  [Errno.NOT_IN_ROOM]: 'They are not in this room any more.',
  [Errno.COHOST_ON]: 'The room already has a co-host.',
  [Errno.NO_COHOST]: 'That co-host invitation or request has ended.',
  [Errno.NETWORK]: 'Cannot reach the server. Check your connection and try again.',
};

// ApiError is a call that did not succeed: errno says why.
export class ApiError extends Error {
  constructor(errno, message, method) {
    super(messages[errno] || message || `Error ${errno}`);
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
  const headers = { 'Content-Type': 'application/json' };
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
  loginExpired(messages[Errno.LOGIN_AGAIN]);
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
