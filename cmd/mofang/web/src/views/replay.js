// A replay: a recording (Live.record.read) played from its MP4, with the
// comments of that live scrolling over it at the moments they were made
// (danmaku.js, ReplayDanmaku over Live.record.comments). A room with a
// password asks for it, as the room does.

import { call, Errno } from '../api.js';
import { formatDateTime, formatDuration } from '../format.js';
import { dialog, h, icon } from '../ui.js';
import { ReplayDanmaku } from './danmaku.js';
import { t } from '../i18n/index.js';

export function replayView(root, { params, go }) {
  const recordId = params[0];
  let danmaku = null;
  let left = false;
  const video = h('video', { id: 'replay-video', controls: true, playsinline: true, preload: 'auto' });
  const title = h('div', { class: 'room-title' });
  const note = h('p', { class: 'muted small', id: 'replay-note' });
  const stage = h('div', { class: 'stage replay-stage' }, video,
    h('div', { class: 'stage-top' },
      h('button', { class: 'btn btn-icon glass', id: 'leave', 'aria-label': t('replay.back'), onclick: () => history.length > 1 ? history.back() : go('/rooms') }, icon('back')),
      title,
    ),
  );
  const controls = h('div', { class: 'stage-controls replay-controls' });
  stage.append(controls);
  root.append(h('div', { class: 'page page-replay' }, stage, note));

  async function open(password) {
    let r;
    try {
      const p = { record_id: Number(recordId) };
      if (password !== undefined) p.password = password;
      r = await call('Live.record.read', p);
    } catch (e) {
      if (left) return;
      if (e.errno === Errno.WRONG_ROOM_PASSWORD) {
        askPassword(password, open);
        return;
      }
      note.textContent = e.message;
      return;
    }
    if (left) return;
    const d = r.data;
    title.replaceChildren(h('div', {},
      h('p', { class: 'room-name' }, t('replay.replay')),
      h('p', { class: 'room-owner' }, formatDateTime(d.start_time * 1000), ' · ', formatDuration(d.duration)),
    ));
    const v = d.width && d.height ? `${d.width} / ${d.height}` : '';
    if (v) stage.style.setProperty('--video-aspect', v);
    video.src = d.mp4;
    danmaku = new ReplayDanmaku(stage, video, recordId, password);
    controls.append(danmaku.button);
    danmaku.loaded.then((n) => {
      if (!left) note.textContent = n ? t('replay.comments', { n }) : t('replay.noComments');
    }).catch((e) => {
      if (!left) note.textContent = e.message;
    });
    video.play().catch(() => {}); // autoplay may be refused: the controls are there
  }

  function askPassword(tried, retry) {
    const pw = h('input', { type: 'password', id: 'room-password-input', placeholder: t('replay.roomPassword'), autocomplete: 'off', required: true });
    dialog((close) => {
      const form = h('form', { class: 'form' },
        h('h2', {}, icon('lock'), ' ', t('replay.enterPassword')),
        h('label', { class: 'field' }, h('span', {}, t('replay.password')), pw),
        h('p', { class: 'form-error', id: 'room-password-error', role: 'alert' }, tried === undefined ? '' : t('replay.wrong')),
        h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'room-password-submit' }, t('replay.enter'))),
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        close();
        retry(pw.value);
      });
      return form;
    }, { label: t('replay.roomPassword'), onClose: () => go('/rooms') });
  }

  open(undefined);
  return () => {
    left = true;
    if (danmaku) danmaku.destroy();
    video.removeAttribute('src');
    video.load();
  };
}

// replayLink is the link to a recording's replay with its comments.
export function replayLink(record) {
  return h('a', { class: 'btn btn-ghost', href: `#/replay/${record.id}`, dataset: { replay: record.id } }, t('replay.withChat'));
}
