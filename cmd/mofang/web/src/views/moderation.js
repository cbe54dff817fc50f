// Room moderation on the pages (Live.room.mod.*, Live.comment.delete).
//
// In the live room (Moderation): the owner, moderators and admins get a
// "⋯" button on each comment and online member (delete, mute 5 min or
// 1 h, kick, ban) and the chat settings (slow mode, followers-only);
// deleted comments disappear live ("comment_delete" events); moderation
// events show as chat lines; a refused comment says why.
//
// In My room (moderationCard): the owner names and removes moderators,
// edits the room's word list and reads the moderation log.

import { call } from '../api.js';
import { dialog, h, nickname, toast } from '../ui.js';
import { formatDateTime } from '../format.js';
import { t, tOr } from '../i18n/index.js';

// Errnos of moderation (README, "Errors").
export const ModErrno = {
  MUTED: 1030,
  KICKED: 1031,
  BANNED: 1032,
  NOT_MODERATOR: 1033,
  PROTECTED: 1034,
  SLOW_MODE: 1035,
  FOLLOWERS_ONLY: 1036,
  WORD_REFUSED: 1037,
  NO_COMMENT: 1038,
  TOO_MANY_MODS: 1039,
};

// told makes a server's message of moderation readable: a capital first,
// its times (RFC 3339, UTC) in the viewer's own.
function told(msg) {
  const s = String(msg || '').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, (ts) => formatDateTime(Date.parse(ts)));
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function until(ts) {
  return ts ? t('mod.until', { time: formatDateTime(ts * 1000, { timeStyle: 'medium' }) }) : '';
}

// Moderation is the room page's moderation: what the caller may do, and
// the room events of moderation.
export class Moderation {
  // roomId: the room; me: the logged-in user; chat: the chat list;
  // sysLine(text, type): adds a line to the chat; owner(): the room's
  // owner, if known; onChange(): the caller's role changed (the online
  // list draws its buttons again).
  constructor({ roomId, me, chat, sysLine, owner, onChange }) {
    Object.assign(this, { roomId, me, chat, sysLine, owner, onChange });
    this.role = 'viewer';
    this.slow = 0;
    this.followersOnly = false;
    this.bar = h('div', { class: 'mod-bar', id: 'mod-bar', hidden: true });
  }

  get canModerate() {
    return this.role === 'owner' || this.role === 'moderator' || this.role === 'admin';
  }

  // load asks the server what the caller is in the room.
  async load() {
    try {
      const r = await call('Live.room.mod.me', { room_id: this.roomId });
      this.role = r.data.role;
      this.slow = r.data.slow;
      this.followersOnly = r.data.followers_only;
      if (r.data.muted_until) this.sysLine(t('mod.youMuted', { until: until(r.data.muted_until) }), 'mod');
    } catch {
      this.role = 'viewer';
    }
    this.drawBar();
    for (const li of this.chat.querySelectorAll('li[data-comment-id]')) this.decorate(li);
    this.onChange();
  }

  // drawBar draws the chat settings for those who may change them.
  drawBar() {
    this.bar.hidden = !this.canModerate;
    if (!this.canModerate) return;
    const slow = h('select', { id: 'mod-slow', 'aria-label': t('mod.slowMode'), onchange: () => this.settings({ slow: Number(slow.value) }) },
      ...[0, 5, 10, 30, 60, 300].map((s) => h('option', { value: s }, s ? t('mod.slowN', { s }) : t('mod.slowOff'))));
    slow.value = String(this.slow);
    if (slow.value === '') {
      slow.append(h('option', { value: this.slow }, t('mod.slowN', { s: this.slow })));
      slow.value = String(this.slow);
    }
    const fo = h('input', { type: 'checkbox', id: 'mod-followers', checked: this.followersOnly, onchange: () => this.settings({ followers_only: fo.checked }) });
    this.bar.replaceChildren(slow, h('label', { class: 'check small' }, fo, ' ', t('mod.followersOnly')));
  }

  async settings(p) {
    try {
      const r = await call('Live.room.mod.settings', { room_id: this.roomId, ...p });
      this.slow = r.data.slow;
      this.followersOnly = r.data.followers_only;
    } catch (e) {
      toast(e.serverMessage || e.message, 'error');
    }
    this.drawBar();
  }

  // decorate gives a comment line (data-comment-id, data-user-id) its
  // moderation button, for those who may use it.
  decorate(li) {
    if (!this.canModerate || li.querySelector('.mod-btn')) return;
    const uid = Number(li.dataset.userId);
    const owner = this.owner();
    if (owner && uid === owner.id && this.role !== 'owner') return;
    li.append(h('button', {
      class: 'mod-btn', type: 'button', 'aria-label': t('mod.moderate'),
      onclick: () => this.menu({ id: uid, nickname: li.dataset.user }, Number(li.dataset.commentId)),
    }, '⋯'));
  }

  // memberButton is the moderation button of an online member, or null.
  memberButton(u) {
    const owner = this.owner();
    if (!this.canModerate || u.id === this.me.id || (owner && u.id === owner.id)) return null;
    return h('button', { class: 'btn btn-ghost small mod-btn', type: 'button', 'aria-label': t('mod.moderateWho', { who: nickname(u) }), onclick: () => this.menu(u) }, '⋯');
  }

  // menu offers the actions on a user (and their comment).
  menu(user, commentId) {
    const act = (method, params, done) => async () => {
      close();
      try {
        await call(method, { room_id: this.roomId, ...params });
        toast(done, 'ok');
      } catch (e) {
        toast(e.serverMessage || e.message, 'error');
      }
    };
    const uid = user.id;
    const mine = uid === this.me.id;
    const buttons = [
      commentId ? h('button', { class: 'btn btn-ghost', id: 'mod-delete', onclick: act('Live.comment.delete', { comment_id: commentId }, t('mod.commentDeleted')) }, t('mod.deleteComment')) : null,
      mine ? null : h('button', { class: 'btn btn-ghost', id: 'mod-mute5', onclick: act('Live.room.mod.mute', { user_id: uid, duration: 300 }, t('mod.muted5')) }, t('mod.mute5')),
      mine ? null : h('button', { class: 'btn btn-ghost', id: 'mod-mute60', onclick: act('Live.room.mod.mute', { user_id: uid, duration: 3600 }, t('mod.muted60')) }, t('mod.mute60')),
      mine ? null : h('button', { class: 'btn btn-ghost', id: 'mod-unmute', onclick: act('Live.room.mod.unmute', { user_id: uid }, t('mod.unmuted')) }, t('mod.unmute')),
      mine ? null : h('button', { class: 'btn btn-ghost', id: 'mod-kick', onclick: act('Live.room.mod.kick', { user_id: uid, duration: 300 }, t('mod.kicked5')) }, t('mod.kick5')),
      mine ? null : h('button', { class: 'btn btn-danger', id: 'mod-ban', onclick: act('Live.room.mod.ban', { user_id: uid }, t('mod.banned')) }, t('mod.ban')),
    ];
    const close = dialog((done) => h('div', { class: 'mod-menu' },
      h('h3', {}, nickname(user)),
      h('div', { class: 'mod-actions' }, ...buttons),
      h('button', { class: 'btn btn-ghost', onclick: done }, t('mod.cancel')),
    ), { label: t('mod.moderate') });
  }

  // onRoomEvent handles the room events of moderation; false for others.
  onRoomEvent(ev) {
    if (ev.type === 'comment_delete') {
      const li = this.chat.querySelector(`li[data-comment-id="${Number(ev.id)}"]`);
      if (li) li.remove();
      return true;
    }
    if (ev.type !== 'mod' || !ev.mod) return false;
    const m = ev.mod;
    if (m.action === 'slow') {
      this.slow = m.slow || 0;
      this.sysLine(this.slow ? t('mod.slowOn', { s: this.slow }) : t('mod.slowIsOff'), 'mod');
    } else if (m.action === 'followers_only') {
      this.followersOnly = !!m.followers_only;
      this.sysLine(this.followersOnly ? t('mod.foOn') : t('mod.foOff'), 'mod');
    } else if (m.target) {
      const params = { who: nickname(m.target), action: tOr('mod.act.' + m.action, m.action), until: until(m.until), by: nickname(m.by) };
      this.sysLine(t(m.target.id === this.me.id ? 'mod.youWere' : 'mod.theyWere', params), 'mod');
      if (m.target.id === this.me.id && (m.action === 'mod_add' || m.action === 'mod_remove')) this.load();
    }
    this.drawBar();
    return true;
  }

  // reenterText says why a moderator took the caller out of the room
  // ("reenter" with reason kicked or user_banned), or "" for other
  // reasons.
  reenterText(ev) {
    if (ev.reason === 'kicked') return t('mod.kickedOut');
    if (ev.reason === 'user_banned') return t('mod.bannedHere');
    return '';
  }

  // commentError says why a comment was refused, for moderation errnos;
  // "" for others.
  commentError(err) {
    switch (err.errno) {
      case ModErrno.MUTED:
        return told(err.serverMessage) || t('mod.mutedHere');
      case ModErrno.SLOW_MODE:
        return told(err.serverMessage) || t('mod.slowWait');
      case ModErrno.FOLLOWERS_ONLY:
        return t('mod.foOnly');
      case ModErrno.WORD_REFUSED:
        return t('mod.word');
    }
    return '';
  }
}

// joinError says why a room refused the caller (kicked, banned), or "".
export function joinError(err) {
  if (err.errno === ModErrno.KICKED || err.errno === ModErrno.BANNED) return told(err.serverMessage) || t('mod.noEntry');
  return '';
}

// moderationCard is My room's moderation: moderators, words, log.
export function moderationCard(roomId) {
  const card = h('section', { class: 'card moderation', id: 'moderation', dataset: { roomId: String(roomId) } }, h('h2', {}, t('mod.title')));
  const mods = h('ul', { class: 'mod-list', id: 'mod-list' });
  const addInput = h('input', { id: 'mod-add-id', inputmode: 'numeric', placeholder: t('mod.userID'), autocomplete: 'off' });
  const words = h('textarea', { id: 'mod-words', rows: 4, placeholder: t('mod.onePerLine') });
  const mode = h('select', { id: 'mod-words-mode' }, h('option', { value: 'mask' }, t('mod.mask')), h('option', { value: 'refuse' }, t('mod.refuse')));
  const wordsNote = h('p', { class: 'muted small', id: 'mod-words-note' });
  const log = h('ul', { class: 'mod-log', id: 'mod-log' });

  const fail = (e) => toast(e.serverMessage || e.message, 'error');
  const drawMods = (list) => mods.replaceChildren(...(list.length ? list : [null]).map((m) => m
    ? h('li', { dataset: { userId: m.id } }, h('span', {}, t('mod.modLine', { who: nickname(m), id: m.id })),
      h('button', { class: 'btn btn-ghost small', type: 'button', onclick: () => setMod('Live.room.mod.remove', m.id) }, t('mod.remove')))
    : h('li', { class: 'muted' }, t('mod.noMods'))));
  // Answers are drawn only when no later call was made: the first list's
  // answer, late, must not draw over an addition made meanwhile.
  let modsAsked = 0;
  let wordsAsked = 0;
  async function callMods(method, params) {
    const n = ++modsAsked;
    const r = await call(method, params);
    if (n === modsAsked) drawMods(r.data.moderators);
  }
  async function callWords(params) {
    const n = ++wordsAsked;
    const r = await call('Live.room.mod.words', params);
    if (n === wordsAsked) drawWords(r.data);
  }
  async function setMod(method, userId) {
    try {
      await callMods(method, { room_id: roomId, user_id: userId });
      addInput.value = '';
      loadLog();
    } catch (e) {
      fail(e);
    }
  }
  async function saveWords(e) {
    e.preventDefault();
    try {
      const list = words.value.split('\n').map((w) => w.trim()).filter(Boolean);
      await callWords({ room_id: roomId, words: list, mode: mode.value });
      toast(t('mod.wordsSaved'), 'ok');
      loadLog();
    } catch (err) {
      fail(err);
    }
  }
  function drawWords(d) {
    words.value = (d.words || []).join('\n');
    mode.value = d.mode;
    wordsNote.textContent = d.global ? t('mod.global', { n: d.global, mode: d.global_mode }) : '';
  }
  async function loadLog() {
    try {
      const r = await call('Live.room.mod.log', { room_id: roomId, size: 50 });
      log.replaceChildren(...r.data.actions.map((a) => h('li', {},
        h('span', { class: 'muted small' }, formatDateTime(a.time)), ' ',
        h('b', {}, nickname(a.by)), ` ${tOr('mod.log.' + a.action, a.action)}`, a.target ? ` ${nickname(a.target)}` : '',
        a.detail ? ` (${a.detail})` : '', until(a.until))));
      if (!r.data.actions.length) log.append(h('li', { class: 'muted' }, t('mod.nothing')));
    } catch (e) {
      log.replaceChildren(h('li', { class: 'form-error' }, e.message));
    }
  }

  const addForm = h('form', { class: 'row', id: 'mod-add-form' }, addInput, h('button', { class: 'btn btn-primary', type: 'submit', id: 'mod-add' }, t('mod.addMod')));
  addForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = Number(addInput.value.trim());
    if (id > 0) setMod('Live.room.mod.add', id);
  });
  const wordsForm = h('form', { class: 'form', id: 'mod-words-form' },
    h('label', { class: 'field' }, h('span', {}, t('mod.myWords')), words), mode, wordsNote,
    h('button', { class: 'btn btn-primary', type: 'submit', id: 'mod-words-save' }, t('mod.saveWords')));
  wordsForm.addEventListener('submit', saveWords);
  card.append(
    h('h3', {}, t('mod.mods')), h('p', { class: 'muted small' }, t('mod.modsCan')), mods, addForm,
    h('h3', {}, t('mod.filter')), wordsForm,
    h('details', {}, h('summary', {}, t('mod.log')), log),
  );
  callMods('Live.room.mod.list', { room_id: roomId }).catch(fail);
  callWords({ room_id: roomId }).catch(fail);
  loadLog();
  return card;
}
