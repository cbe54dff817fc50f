// Follows and scheduled lives in the pages: the Follow button of a live
// room (User.follow, User.unfollow, User.follow.status), the "Following"
// filter of the room list (Live.stream.list's followed), the upcoming
// lives on the room list and in My room (Live.schedule.list, .add,
// .cancel), and a toast on every page when a followed host goes live
// (the Live.notify notification on a websocket of its own).

import { call, session } from '../api.js';
import { RpcSocket } from '../socket.js';
import { avatar, formatCount, h, nickname } from '../ui.js';
import { formatDateTime } from '../format.js';
import { t } from '../i18n/index.js';

const FILTER_KEY = 'mofang.rooms.filter';
const UPCOMING_EVERY = 60000;
const TOAST_MS = 8000;

// when shows a scheduled time (ms) in the pages' language.
function when(ms) {
  return formatDateTime(ms, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

// followButton is the live room's Follow / Following button with the
// host's follower count; hidden on one's own room. setHost(user) binds it
// to the room's host (again on each read of the room: it asks only once).
export function followButton() {
  const count = h('span', { class: 'follow-count', id: 'follower-count' }, '0');
  const label = h('span', { class: 'follow-label' }, t('follow.follow'));
  const el = h('button', { type: 'button', class: 'btn small follow-btn', id: 'follow-btn', hidden: true, onclick: toggle }, label, count);
  let host = 0;
  let following = false;
  let busy = false;

  function draw(d) {
    following = !!d.following;
    el.classList.toggle('is-following', following);
    el.setAttribute('aria-pressed', following ? 'true' : 'false');
    label.textContent = following ? t('follow.following') : t('follow.follow');
    count.textContent = formatCount(d.followers);
    el.title = t(d.followers === 1 ? 'follow.follower1' : 'follow.followers', { n: formatCount(d.followers) });
  }

  async function toggle() {
    if (!host || busy) return;
    busy = true;
    el.disabled = true;
    try {
      const r = await call(following ? 'User.unfollow' : 'User.follow', { user_id: host });
      draw(r.data);
    } catch (e) {
      if (e.errno !== 1005) el.title = e.message;
    } finally {
      busy = false;
      el.disabled = false;
    }
  }

  async function setHost(user) {
    const me = session.get()?.user || {};
    if (!user || !user.id || user.id === host) return;
    host = user.id;
    if (user.id === me.id) return; // one's own room
    try {
      const r = await call('User.follow.status', { user_id: host });
      draw(r.data);
      el.hidden = false;
    } catch {
      // no button when the status cannot be read
    }
  }
  return { el, setHost };
}

// roomFilter is the room list's All / Following switch; params() are
// Live.stream.list's, onChange reloads the list.
export function roomFilter(onChange) {
  let followed = sessionStorage.getItem(FILTER_KEY) === 'following';
  const all = h('button', { type: 'button', class: 'tab', id: 'filter-all', onclick: () => set(false) }, t('follow.all'));
  const mine = h('button', { type: 'button', class: 'tab', id: 'filter-following', onclick: () => set(true) }, t('follow.following'));
  const hint = h('p', { class: 'muted room-filter-hint', id: 'filter-hint' }, t('follow.filterHint'));
  const el = h('div', { class: 'room-filter-box' },
    h('div', { class: 'tabs room-filter', role: 'group', 'aria-label': t('follow.whichRooms') }, all, mine),
    hint,
  );
  function draw() {
    hint.hidden = !followed;
    all.classList.toggle('active', !followed);
    mine.classList.toggle('active', followed);
    all.setAttribute('aria-pressed', String(!followed));
    mine.setAttribute('aria-pressed', String(followed));
  }
  function set(v) {
    if (v === followed) return;
    followed = v;
    sessionStorage.setItem(FILTER_KEY, v ? 'following' : 'all');
    draw();
    onChange();
  }
  draw();
  return {
    el,
    params: () => (followed ? { followed: true } : {}),
    followed: () => followed,
  };
}

// scheduleItem is one scheduled live in a list; extra is what goes at its
// end (a Cancel button).
function scheduleItem(s, extra) {
  return h('li', { class: 'schedule-item', dataset: { scheduleId: s.id, roomId: Number(s.room_id) } },
    avatar(s.host, 'md'),
    h('div', { class: 'schedule-info' },
      h('p', { class: 'schedule-title' }, s.title),
      h('p', { class: 'muted' }, nickname(s.host), ' · ', h('time', { datetime: new Date(s.at).toISOString() }, when(s.at))),
    ),
    s.live ? h('a', { class: 'badge badge-live', href: `#/room/${Number(s.room_id)}` }, t('follow.live')) : null,
    extra,
  );
}

// upcomingLives is the room list's "Upcoming lives", refreshed every
// minute; hidden when there are none. stop() ends the refreshes.
export function upcomingLives() {
  const list = h('ul', { class: 'schedule-list', id: 'upcoming-list' });
  const el = h('section', { class: 'upcoming', id: 'upcoming', hidden: true }, h('h2', {}, t('follow.upcoming')), list);
  let timer = null;
  let stopped = false;
  async function load() {
    clearTimeout(timer);
    try {
      const r = await call('Live.schedule.list', { limit: 10 });
      const items = (r.data.schedules || []).map((s) => {
        const li = scheduleItem(s);
        li.addEventListener('click', (e) => {
          if (!e.target.closest('a')) location.hash = `#/room/${Number(s.room_id)}`;
        });
        return li;
      });
      list.replaceChildren(...items);
      el.hidden = items.length === 0;
    } catch {
      // the room list shows connection trouble
    }
    if (!stopped) timer = setTimeout(load, UPCOMING_EVERY);
  }
  load();
  return {
    el,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// scheduleCard is My room's "Scheduled lives": a form to announce a live
// (time, title, cover) and the room's upcoming lives with Cancel.
// setRoom(roomId) binds it to the room once it exists.
export function scheduleCard() {
  const at = h('input', { type: 'datetime-local', id: 'schedule-at', required: true });
  const title = h('input', { id: 'schedule-title', maxlength: 64, placeholder: t('follow.titlePlaceholder'), autocomplete: 'off' });
  const cover = h('input', { id: 'schedule-cover', maxlength: 512, placeholder: t('follow.coverPlaceholder'), autocomplete: 'off' });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'schedule-error' });
  const submit = h('button', { class: 'btn btn-primary', type: 'submit', id: 'schedule-add' }, t('follow.schedule'));
  const list = h('ul', { class: 'schedule-list', id: 'schedule-list' });
  const empty = h('p', { class: 'muted', id: 'schedule-empty' }, t('follow.noSchedules'));
  const form = h('form', { class: 'form schedule-form', id: 'schedule-form' },
    h('label', { class: 'field' }, h('span', {}, t('follow.when')), at),
    h('label', { class: 'field' }, h('span', {}, t('follow.title')), title),
    h('label', { class: 'field' }, h('span', {}, t('follow.cover')), cover),
    error,
    submit,
  );
  const el = h('section', { class: 'card schedules', id: 'schedules', hidden: true }, h('h2', {}, t('follow.scheduled')), form, list, empty);
  let roomId = null;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const at0 = new Date(at.value).getTime();
    if (!at.value || Number.isNaN(at0)) {
      error.textContent = t('follow.pickDate');
      return;
    }
    submit.disabled = true;
    try {
      await call('Live.schedule.add', { room_id: roomId, at: at0, title: title.value.trim(), cover: cover.value.trim() });
      title.value = '';
      cover.value = '';
      at.value = '';
      await load();
    } catch (err) {
      if (err.errno === 1043) error.textContent = t('follow.tooMany');
      else error.textContent = err.errno === 1001 && err.serverMessage ? err.serverMessage : err.message;
    } finally {
      submit.disabled = false;
    }
  });

  async function load() {
    if (!roomId) return;
    try {
      const r = await call('Live.schedule.list', { room_id: roomId, limit: 50 });
      const items = (r.data.schedules || []).map((s) => scheduleItem(s,
        h('button', {
          type: 'button', class: 'btn btn-ghost small schedule-cancel', 'aria-label': t('follow.cancelTitle', { title: s.title }),
          onclick: async (e) => {
            e.target.disabled = true;
            try {
              await call('Live.schedule.cancel', { schedule_id: s.id });
            } catch (err) {
              error.textContent = err.errno === 1042 ? t('follow.passed') : err.message;
            }
            load();
          },
        }, t('follow.cancel'))));
      list.replaceChildren(...items);
      empty.hidden = items.length > 0;
    } catch (err) {
      if (err.errno !== 1005) error.textContent = err.message;
    }
  }

  return {
    el,
    setRoom(id) {
      roomId = id;
      el.hidden = !id;
      load();
    },
  };
}

// The live toasts: one websocket per page while logged in, whatever the
// page, that hears of followed hosts going live.
let toastSocket = null;
let toastToken = '';
let tokenCheck = null;

function showLiveToast(n) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const room = Number(n.room_id);
  const el = h('div', { class: 'toast toast-live', role: 'status', dataset: { roomId: room } },
    avatar(n.host, 'sm'),
    h('span', { class: 'toast-live-text' }, h('b', {}, nickname(n.host)), ' ', t('follow.isLive'), ' ', n.title || n.room_name),
    h('a', { class: 'btn small btn-primary', href: `#/room/${room}`, onclick: () => el.remove() }, t('follow.watch')),
  );
  box.append(el);
  setTimeout(() => el.classList.add('out'), TOAST_MS);
  setTimeout(() => el.remove(), TOAST_MS + 400);
}

// liveToasts starts (on) or stops (off) the live toasts' websocket. The
// socket reconnects with the new token when the session's changes (a
// refreshed login), since the server tells only sockets whose token
// holds.
export function liveToasts(on) {
  if (!on) {
    if (toastSocket) toastSocket.stop();
    toastSocket = null;
    clearInterval(tokenCheck);
    return;
  }
  if (toastSocket) return;
  toastSocket = new RpcSocket({
    onOpen: () => {
      toastToken = session.get()?.access_token || '';
    },
    onNotify: (method, p) => {
      if (method === 'Live.notify' && p && p.type === 'live') showLiveToast(p);
    },
  });
  toastSocket.start();
  tokenCheck = setInterval(() => {
    const tok = session.get()?.access_token || '';
    if (!tok) liveToasts(false);
    else if (tok !== toastToken && toastSocket) toastSocket.reconnectNow();
  }, 30000);
}
