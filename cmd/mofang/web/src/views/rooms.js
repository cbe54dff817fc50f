// The room list: Live.stream.list, live rooms first, refreshed every few
// seconds while the page is visible.

import { call, session } from '../api.js';
import { avatar, banner, formatCount, h, icon, langSwitch, nickname } from '../ui.js';
import { roomPicture } from './thumb.js';
import { roomFilter, upcomingLives } from './follow.js';
import { t } from '../i18n/index.js';

const REFRESH_EVERY = 4000;

export function roomsView(root, { message, go }) {
  const me = session.get().user || {};
  const filter = roomFilter(() => load());
  const upcoming = upcomingLives();
  const coins = h('span', { class: 'coins', id: 'my-coins' }, icon('coin'), formatCount(me.coin));
  const list = h('ul', { class: 'room-list', id: 'room-list', 'aria-live': 'polite' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', {}, t('rooms.noRooms')),
    h('p', { class: 'muted' }, t('rooms.noRoomsHint')),
  );
  root.append(
    h('div', { class: 'page page-rooms' },
      h('header', { class: 'topbar' },
        h('div', { class: 'me' }, avatar(me, 'sm'), h('span', { class: 'me-name', id: 'me-name' }, nickname(me)), coins),
        h('div', { class: 'actions' },
          langSwitch(),
          h('button', { class: 'btn btn-ghost', id: 'logout', onclick: logout }, t('rooms.logOut')),
        ),
      ),
      h('div', { class: 'title-row' },
        h('h1', {}, t('rooms.title')),
        h('a', { class: 'btn btn-primary', href: '#/me', id: 'my-room-link' }, icon('plus'), t('rooms.myRoom')),
      ),
      message ? h('p', { class: 'notice' }, message) : null,
      filter.el,
      list,
      empty,
      upcoming.el,
    ),
  );

  async function logout() {
    session.clear();
    go('/login');
  }

  let timer = null;
  let stopped = false;
  let failures = 0;

  async function load() {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const r = await call('Live.stream.list', filter.params());
      failures = 0;
      banner('');
      draw(r.stream_list || []);
    } catch (e) {
      if (e.errno === 1005) return; // on the way to the log-in page
      failures++;
      banner(e.errno === 0 ? t('rooms.networkLost') : e.message, 'warn');
    }
    // Coins change with gifts: refresh them now and then.
    if (!stopped) {
      timer = setTimeout(load, document.hidden ? REFRESH_EVERY * 4 : REFRESH_EVERY * Math.min(1 + failures, 4));
    }
  }

  function draw(rooms) {
    rooms = [...rooms].sort((a, b) => Number(b.status) - Number(a.status));
    empty.hidden = rooms.length > 0;
    list.replaceChildren(...rooms.map((room) => {
      const live = !!room.status;
      return h('li', {},
        h('a', {
          class: 'room-item' + (live ? ' is-live' : ''),
          href: `#/room/${room.id}`,
          dataset: { roomId: room.id, roomName: room.room_name, live: live ? '1' : '0' },
        },
          roomPicture(room, () => avatar(room.user, 'lg')),
          h('div', { class: 'room-info' },
            h('p', { class: 'room-name' }, room.has_password ? icon('lock', 'lock') : null, room.room_name),
            h('p', { class: 'room-owner muted' }, nickname(room.user)),
          ),
          h('div', { class: 'room-meta' },
            live ? h('span', { class: 'badge badge-live' }, t('rooms.live')) : h('span', { class: 'badge badge-off' }, t('rooms.offline')),
            h('span', { class: t('rooms.viewers'), title: t('rooms.viewers') }, icon('eye'), h('span', { class: 'viewers-n' }, formatCount(room.clients_number))),
          ),
        ),
      );
    }));
  }

  async function refreshMe() {
    try {
      const r = await call('User.info', {});
      session.setUser(r.data);
      coins.replaceChildren(icon('coin'), formatCount(r.data.coin));
    } catch {
      // the list shows the trouble
    }
  }

  const onVisible = () => {
    if (!document.hidden) load();
  };
  document.addEventListener('visibilitychange', onVisible);
  load();
  refreshMe();

  return () => {
    stopped = true;
    clearTimeout(timer);
    upcoming.stop();
    document.removeEventListener('visibilitychange', onVisible);
  };
}

