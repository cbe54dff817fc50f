// MoFang Live's pages: a hash router over four views. Every view is a
// function mount(root, params) that draws itself into root and returns a
// function that tears it down (timers, sockets, players).

import './style.css';
import { onLoginExpired, session } from './api.js';
import { banner } from './ui.js';
import { onLocale, t } from './i18n/index.js';
import { loginView } from './views/login.js';
import { roomsView } from './views/rooms.js';
import { myRoomView } from './views/myroom.js';
import { roomView } from './views/room.js';
import { replayView } from './views/replay.js';
import { liveToasts } from './views/follow.js';
import { livesView } from './views/lives.js';

const routes = [
  { re: /^\/login$/, view: loginView, public: true },
  { re: /^\/rooms$/, view: roomsView },
  { re: /^\/me$/, view: myRoomView },
  { re: /^\/room\/(\d+)$/, view: roomView },
  { re: /^\/replay\/(\d+)$/, view: replayView },
  { re: /^\/lives\/(\d+)$/, view: livesView },
];

const app = document.getElementById('app');
let teardown = null;
let shown = null; // the path on screen
let flash = '';

// go navigates to a route such as '/rooms', with a message for its page.
export function go(path, message) {
  if (message) flash = message;
  if (location.hash === '#' + path) render(true);
  else location.hash = '#' + path; // hashchange renders
}

// render draws the page of the current URL; a hashchange to the page on
// screen (go() drew it already) is ignored unless force is set.
function render(force) {
  const path = location.hash.replace(/^#/, '') || '/rooms';
  if (path === shown && force !== true) return;
  const route = routes.find((r) => r.re.test(path));
  if (!route) {
    go('/rooms');
    return;
  }
  if (!route.public && !session.get()) {
    sessionStorage.setItem('mofang.next', path);
    go('/login');
    return;
  }
  if (teardown) {
    try {
      teardown();
    } catch (e) {
      console.error('MoFang: leaving a page', e);
    }
    teardown = null;
  }
  shown = path;
  document.title = t('app.title');
  liveToasts(!!session.get()); // a followed host going live: a toast on any page
  banner('');
  app.replaceChildren();
  const message = flash;
  flash = '';
  const params = path.match(route.re).slice(1);
  teardown = route.view(app, { params, message, go }) || null;
  window.scrollTo(0, 0);
}

onLoginExpired((message) => {
  const path = location.hash.replace(/^#/, '');
  if (path && path !== '/login') sessionStorage.setItem('mofang.next', path);
  go('/login', message);
});

window.addEventListener('hashchange', () => render(false));
onLocale(() => render(true)); // the language switch: the page drawn again in it
render(true);
