// Gift leaderboards and host statistics: the live room's top contributors
// (Live.rank, kept current by the "rank" room events), and a host's past
// lives (Live.session.list) with a chart of the viewers over time drawn
// from the samples (Live.session.read) as inline SVG.

import { call } from '../api.js';
import { formatClock, formatCoins, formatDateTime, formatDuration } from '../format.js';
import { avatar, h, icon, nickname } from '../ui.js';
import { t } from '../i18n/index.js';

const SVG = 'http://www.w3.org/2000/svg';

// svg creates an SVG element with attributes.
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// rankBoard is the live room's leaderboard: the top ten of this live or
// of all time. password() gives the room password the page entered, if
// any. onEvent takes the "rank" room events: the top three they carry is
// drawn at once, then the top ten is read again (at most once a second).
export function rankBoard(roomId, password) {
  let scope = 'live';
  let lastTotal = -1; // the largest rank event total seen: older events are dropped
  let timer = null;
  let shown = []; // the places on the board
  const list = h('ol', { class: 'rank-list', id: 'rank-list' });
  const tabs = ['live', 'all'].map((s) => h('button', {
    class: 'rank-tab', type: 'button', dataset: { scope: s }, 'aria-pressed': String(s === scope),
    onclick: () => { scope = s; tabs.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.scope === scope))); load(); },
  }, s === 'live' ? t('lives.thisLive') : t('lives.allTime')));
  const stats = h('a', { class: 'btn btn-ghost small', href: `#/lives/${roomId}`, id: 'stats-link', hidden: true }, t('lives.statistics'));
  const el = h('div', { class: 'rank-board', id: 'rank-board' },
    h('div', { class: 'rank-head' }, h('h2', {}, icon('coin'), ' ', t('lives.topFans')), ...tabs, stats),
    list);

  function draw(ranks) {
    shown = ranks;
    if (!ranks.length) {
      list.replaceChildren(h('li', { class: 'muted small rank-empty' }, t('lives.noGifts')));
      return;
    }
    list.replaceChildren(...ranks.map((r) => h('li', { class: `rank-item rank-${r.rank}`, dataset: { userId: r.user_id } },
      h('span', { class: 'rank-place' }, String(r.rank)),
      avatar({ id: r.user_id, nickname: r.nickname, avatar: r.avatar }, 'sm'),
      h('span', { class: 'rank-name' }, nickname({ nickname: r.nickname })),
      h('span', { class: 'rank-coins' }, icon('coin'), formatCoins(r.coins)),
    )));
  }

  async function load() {
    const params = { room_id: roomId, scope, limit: 10 };
    const pw = password && password();
    if (pw) params.password = pw;
    try {
      const r = await call('Live.rank', params);
      if (r.data.scope === scope) draw(r.data.ranks || []);
    } catch {
      // the board is a nicety: the chat goes on without it
    }
  }

  function onEvent(ev) {
    if (!ev.rank || ev.rank.total < lastTotal) return;
    lastTotal = ev.rank.total;
    const top = ((scope === 'live' ? ev.rank.live : ev.rank.all) || [])
      .map((e) => ({ rank: e.rank, user_id: e.user.id, nickname: e.user.nickname, avatar: e.user.avatar, coins: e.coins }));
    // The three at once, the others below them as they were until the
    // next read.
    const ids = new Set(top.map((r) => r.user_id));
    const floor = top.length ? top[top.length - 1].coins : Infinity;
    const rest = shown.filter((r) => !ids.has(r.user_id) && r.coins <= floor).slice(0, 10 - top.length);
    draw([...top, ...rest].map((r, i) => ({ ...r, rank: i + 1 })));
    if (!timer) timer = setTimeout(() => { timer = null; load(); }, 1000);
  }

  function showStats(on) { stats.hidden = !on; }
  function stop() { clearTimeout(timer); timer = null; }

  draw([]);
  return { el, load, onEvent, showStats, stop };
}

// viewerChart draws samples ({time, viewers}) as an SVG line chart with a
// point per sample.
export function viewerChart(samples) {
  const W = 600, H = 180, L = 36, R = 10, T = 10, B = 24;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'viewer-chart', role: 'img', 'aria-label': t('lives.chart') });
  if (!samples.length) return chart;
  const t0 = samples[0].time, t1 = Math.max(samples[samples.length - 1].time, t0 + 1);
  const peak = Math.max(1, ...samples.map((s) => s.viewers));
  const x = (ms) => L + ((ms - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / peak) * (H - T - B);
  for (const v of [0, peak]) {
    chart.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'chart-grid' }));
    const label = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'chart-label' });
    label.textContent = String(v);
    chart.append(label);
  }
  const end = svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end', class: 'chart-label' });
  end.textContent = formatDuration((t1 - t0) / 1000);
  chart.append(end);
  const pts = samples.map((s) => `${x(s.time).toFixed(1)},${y(s.viewers).toFixed(1)}`).join(' ');
  chart.append(svg('polyline', { points: pts, class: 'chart-line', fill: 'none' }));
  for (const s of samples) {
    const c = svg('circle', { cx: x(s.time).toFixed(1), cy: y(s.viewers).toFixed(1), r: 2.5, class: 'chart-point' });
    const tip = svg('title', {});
    tip.textContent = t('lives.tip', { time: formatClock(s.time), n: s.viewers });
    c.append(tip);
    chart.append(c);
  }
  return chart;
}

// livesSection is the "My lives" card: a room's past lives with their
// figures; opening one draws its viewers over time.
export function livesSection() {
  const el = h('section', { class: 'card lives', id: 'lives' }, h('h2', {}, t('lives.myLives')),
    h('p', { class: 'muted' }, t('lives.intro')));

  async function open(item, id) {
    const box = item.querySelector('.live-chart');
    if (box.childNodes.length) {
      box.replaceChildren();
      return;
    }
    try {
      const r = await call('Live.session.read', { session_id: id });
      box.replaceChildren(viewerChart(r.data.samples || []),
        h('p', { class: 'muted small' }, t('lives.samples', { n: (r.data.samples || []).length })));
    } catch (e) {
      box.replaceChildren(h('p', { class: 'form-error' }, e.message));
    }
  }

  async function load(roomId) {
    let r;
    try {
      r = await call('Live.session.list', { room_id: roomId, size: 50 });
    } catch (e) {
      el.replaceChildren(h('h2', {}, t('lives.myLives')), h('p', { class: 'form-error' }, e.message));
      return;
    }
    const items = (r.data.sessions || []).map((s) => {
      const item = h('li', { class: 'live-item', id: `live-${s.id}`, dataset: { live: s.live ? '1' : '' } },
        h('button', { class: 'live-head', type: 'button', 'aria-label': t('lives.show'), onclick: () => open(item, s.id) },
          h('strong', {}, formatDateTime(s.start)),
          s.live ? h('span', { class: 'badge badge-live' }, t('lives.live')) : null,
          h('span', { class: 'muted small' }, formatDuration(s.duration)),
        ),
        h('div', { class: 'live-figures small' },
          h('span', { title: t('lives.peakTitle') }, icon('users'), ' ' + t('lives.peak', { n: s.peak_viewers })),
          h('span', { title: t('lives.viewsTitle') }, ' · ' + t('lives.views', { n: s.total_viewers })),
          h('span', {}, ' · ' + t('lives.comments', { n: s.comments, users: s.chatters })),
          h('span', {}, ' · ' + t('lives.likes', { n: s.likes })),
          h('span', { class: 'live-coins' }, ' · ', icon('coin'), ' ' + t('lives.coins', { coins: formatCoins(s.coins), gifts: s.gifts })),
        ),
        h('div', { class: 'live-chart' }),
      );
      return item;
    });
    el.replaceChildren(h('h2', {}, t('lives.myLives')),
      items.length ? h('ul', { class: 'lives-list' }, ...items) : h('p', { class: 'muted' }, t('lives.noLives')));
    // The latest live opens at once.
    if (items.length) open(items[0], r.data.sessions[0].id);
  }

  return { el, load };
}

// livesView is the page #/lives/<room id>: a room's lives, for its host
// and for admins.
export function livesView(root, { params }) {
  const roomId = params[0];
  const lives = livesSection();
  root.append(h('div', { class: 'page page-lives' },
    h('header', { class: 'topbar' },
      h('a', { class: 'btn btn-icon', href: `#/room/${roomId}`, 'aria-label': t('lives.back'), id: 'back' }, icon('back')),
      h('h1', {}, t('lives.title', { id: roomId })),
    ),
    lives.el));
  lives.load(roomId);
}
