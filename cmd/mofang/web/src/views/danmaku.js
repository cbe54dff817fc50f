// Danmaku (弹幕): comments scrolling over the video, right to left, in
// lanes, as in Bilibili. A layer lies exactly over the video element
// (pointer-events none: the video's controls stay usable); each comment is
// a span moved by a CSS animation, removed when it has crossed. At most
// MAX_ON_SCREEN are on screen: beyond, the oldest goes; one speed for all,
// a comment waits in a busy lane (up to MAX_WAIT, else it is skipped) so
// that none overlaps another. A toggle button
// turns it on and off, remembered in localStorage.
//
// Danmaku serves the live room (add each comment as it comes);
// ReplayDanmaku the replay (it loads a recording's comments with their
// offsets, Live.record.comments, and shows each when the video reaches
// it; seeking starts from the new moment, pausing pauses them).

import { call } from '../api.js';
import { h, nickname } from '../ui.js';
import { t } from '../i18n/index.js';

const KEY = 'mofang.danmaku'; // '0' off, else on
const MAX_ON_SCREEN = 40;
const LANE_HEIGHT = 30; // px
const TOP_MARGIN = 64; // px left free at the top, for the room's title bar
const CROSS_MS = 8000; // time to cross the video
const GAP = 24; // px between two comments of a lane
const MAX_WAIT = 4000; // ms a comment may wait for room in a lane
const MAX_LEN = 60; // characters shown of a comment
const MAX_REPLAY = 20; // pages of Live.record.comments loaded (500 each)

export class Danmaku {
  // stage is the element the video lies in (positioned); video the
  // video element the comments scroll over.
  constructor(stage, video) {
    this.video = video;
    this.layer = h('div', { class: 'danmaku-layer', id: 'danmaku-layer', 'aria-hidden': 'true' });
    this.enabled = localStorage.getItem(KEY) !== '0';
    this.lanes = []; // per lane: when (ms, performance.now) its last comment has fully entered
    this.button = h('button', {
      class: 'btn glass small danmaku-toggle', type: 'button', id: 'danmaku-toggle',
      title: t('danmaku.title'), onclick: () => this.toggle(),
    });
    // A speech bubble with lines (fixed markup, no user text).
    this.button.innerHTML = '<svg viewBox="0 0 24 24" width="1.1em" height="1.1em" aria-hidden="true"><path d="M4 5h16v11H9l-5 4z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M8 9h8M8 12h5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
    this.drawButton();
    stage.append(this.layer);
    this.place = () => {
      const v = this.video;
      Object.assign(this.layer.style, {
        left: `${v.offsetLeft}px`, top: `${v.offsetTop}px`, width: `${v.offsetWidth}px`, height: `${v.offsetHeight}px`,
      });
    };
    this.resize = typeof ResizeObserver === 'function' ? new ResizeObserver(this.place) : null;
    if (this.resize) this.resize.observe(video);
    this.place();
  }

  toggle() {
    this.enabled = !this.enabled;
    try {
      localStorage.setItem(KEY, this.enabled ? '1' : '0');
    } catch {
      // private mode: for this page
    }
    if (!this.enabled) this.clear();
    this.drawButton();
  }

  drawButton() {
    this.button.setAttribute('aria-pressed', String(this.enabled));
    this.button.setAttribute('aria-label', this.enabled ? t('danmaku.hide') : t('danmaku.show'));
    this.button.classList.toggle('on', this.enabled);
    this.layer.hidden = !this.enabled;
  }

  // add scrolls a comment (of id, if known) across the video.
  add(user, content, mine = false, id = undefined) {
    if (!this.enabled || !content) return;
    this.place();
    const width = this.layer.clientWidth;
    const height = this.layer.clientHeight;
    if (!width || !height) return;
    let text = String(content);
    if ([...text].length > MAX_LEN) text = [...text].slice(0, MAX_LEN).join('') + '…';
    const el = h('span', { class: 'danmaku' + (mine ? ' mine' : ''), dataset: { user: nickname(user), commentId: id === undefined ? '' : Number(id) } }, text);
    el.style.visibility = 'hidden';
    this.layer.append(el);
    const w = el.offsetWidth;
    // The lane free soonest, from the top: below the title bar, in the
    // upper three quarters.
    const top = height > 240 ? TOP_MARGIN : 4;
    const n = Math.max(1, Math.floor((height * 0.75 - top) / LANE_HEIGHT));
    const now = performance.now();
    let lane = 0;
    for (let i = 0; i < n; i++) {
      if ((this.lanes[i] || 0) <= now) {
        lane = i;
        break;
      }
      if ((this.lanes[i] || 0) < (this.lanes[lane] || 0)) lane = i;
    }
    // One speed for all, a video's width in CROSS_MS: a comment never
    // catches up with the one before it in its lane. In a busy lane it
    // waits its turn, up to MAX_WAIT; beyond, it is not shown.
    const speed = width / CROSS_MS; // px per ms
    const wait = Math.max(0, (this.lanes[lane] || 0) - now);
    if (wait > MAX_WAIT) {
      el.remove();
      return;
    }
    this.lanes[lane] = now + wait + (w + GAP) / speed;
    el.style.top = `${top + lane * LANE_HEIGHT}px`;
    el.style.setProperty('--dm-from', `${width}px`);
    el.style.setProperty('--dm-to', `${-w - GAP}px`);
    el.style.animationDuration = `${Math.round((width + w + GAP) / speed)}ms`;
    el.style.animationDelay = `${Math.round(wait)}ms`;
    el.style.visibility = '';
    while (this.layer.children.length > MAX_ON_SCREEN) this.layer.firstElementChild.remove(); // the oldest
    el.addEventListener('animationend', () => el.remove(), { once: true });
  }

  // remove takes a deleted comment off the video.
  remove(id) {
    for (const el of this.layer.querySelectorAll(`[data-comment-id="${Number(id)}"]`)) el.remove();
  }

  // pause stops the comments where they are (a paused replay), or goes on.
  pause(paused) {
    this.layer.classList.toggle('paused', paused);
  }

  clear() {
    this.layer.replaceChildren();
    this.lanes = [];
  }

  destroy() {
    if (this.resize) this.resize.disconnect();
    this.layer.remove();
  }
}

// ReplayDanmaku shows a recording's comments over its replay, each when
// the video reaches its offset.
export class ReplayDanmaku extends Danmaku {
  constructor(stage, video, recordId, password) {
    super(stage, video);
    this.comments = [];
    this.next = 0; // index of the next comment to show
    this.last = 0; // the video time (ms) last looked at
    this.stopped = false;
    const seek = () => {
      this.clear();
      const ms = video.currentTime * 1000;
      this.next = this.indexAt(ms);
      this.last = ms;
    };
    this.listeners = {
      seeking: seek,
      seeked: seek,
      pause: () => this.pause(true),
      play: () => this.pause(false),
      playing: () => this.pause(false),
    };
    for (const [ev, fn] of Object.entries(this.listeners)) video.addEventListener(ev, fn);
    this.loaded = this.load(recordId, password);
    const tick = () => {
      if (this.stopped) return;
      this.show();
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  // load reads every comment of the recording, page by page.
  async load(recordId, password) {
    let from = 0;
    const seen = new Set();
    for (let page = 0; page < MAX_REPLAY && !this.stopped; page++) {
      const params = { record_id: Number(recordId), from };
      if (password !== undefined) params.password = password;
      const r = await call('Live.record.comments', params);
      for (const c of r.data.comments || []) {
        if (seen.has(c.id)) continue;
        seen.add(c.id);
        this.comments.push(c);
        from = c.offset;
      }
      if (!r.data.more) break;
    }
    this.comments.sort((a, b) => a.offset - b.offset || a.id - b.id);
    this.next = this.indexAt(this.video.currentTime * 1000);
    return this.comments.length;
  }

  // indexAt is the index of the first comment at or after ms.
  indexAt(ms) {
    let lo = 0;
    let hi = this.comments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.comments[mid].offset < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // show adds the comments the video has reached since the last look.
  // Those more than a second behind (the tab was hidden) are skipped.
  show() {
    const v = this.video;
    if (v.paused || v.seeking) return;
    const ms = v.currentTime * 1000;
    if (ms < this.last) this.next = this.indexAt(ms); // looped or jumped back
    this.last = ms;
    while (this.next < this.comments.length && this.comments[this.next].offset <= ms) {
      const c = this.comments[this.next++];
      if (ms - c.offset <= 1000) this.add(c.user, c.content, false, c.id);
    }
  }

  destroy() {
    this.stopped = true;
    cancelAnimationFrame(this.frame);
    for (const [ev, fn] of Object.entries(this.listeners)) this.video.removeEventListener(ev, fn);
    super.destroy();
  }
}
