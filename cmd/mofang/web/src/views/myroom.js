// My room: create it or change its name and password with Live.stream,
// then the OBS settings from its publish URLs, copyable, or go live from
// the browser itself: camera and microphone over WebRTC (WHIP, publish.whip).

import { call, session } from '../api.js';
import { formatDateTime, formatDuration, formatSize } from '../format.js';
import { copy, dialog, h, icon, langSwitch, toast } from '../ui.js';
import { canWebRTC, HTTPError, publishWHIP } from '../webrtc.js';
import { moderationCard } from './moderation.js';
import { picturesCard } from './pictures.js';
import { replayLink } from './replay.js';
import { scheduleCard } from './follow.js';
import { forwardSection } from './forward.js';
import { livesSection } from './lives.js';
import { t } from '../i18n/index.js';

export function myRoomView(root, { go }) {
  const me = session.get().user || {};
  const name = h('input', { id: 'room-name', maxlength: 64, placeholder: t('me.namePlaceholder'), autocomplete: 'off' });
  const password = h('input', { id: 'room-password', type: 'password', maxlength: 64, autocomplete: 'new-password', placeholder: t('me.noPassword') });
  const removePw = h('input', { type: 'checkbox', id: 'room-remove-password' });
  const removeRow = h('label', { class: 'check', hidden: true }, removePw, ' ', t('me.removePw'));
  const pwHint = h('small', { class: 'muted', id: 'room-password-hint' }, t('me.pwHint'));
  const error = h('p', { class: 'form-error', role: 'alert', id: 'room-error' });
  const record = h('input', { type: 'checkbox', id: 'room-record', checked: true });
  const submit = h('button', { class: 'btn btn-primary btn-block', type: 'submit', id: 'room-save' }, t('me.create'));
  const recordings = h('section', { class: 'card', id: 'recordings' }, h('h2', {}, t('me.recordings')),
    h('p', { class: 'muted' }, t('me.recordingsIntro')));
  const obs = h('section', { class: 'card obs', id: 'obs', hidden: true });
  const browserLive = h('section', { class: 'card browser-live', id: 'browser-live', hidden: true });
  const schedules = scheduleCard();
  const forwards = forwardSection();
  const lives = livesSection(); // lives.js: past lives with their viewers
  let live = null; // the browser's WHIP session: { session, stream }
  let room = null; // Live.stream's data
  const pictures = picturesCard(() => room && room.room_id); // avatar and cover uploads

  const form = h('form', { class: 'card form', id: 'room-form' },
    h('label', { class: 'field' }, h('span', {}, t('me.roomName')), name),
    h('label', { class: 'field' }, h('span', {}, t('me.roomPassword')), password, pwHint),
    removeRow,
    h('label', { class: 'check' }, record, ' ', t('me.recordLives')),
    error,
    submit,
  );
  removePw.addEventListener('change', () => {
    password.disabled = removePw.checked;
    if (removePw.checked) password.value = '';
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const params = { room_name: name.value.trim(), record: record.checked };
    // Live.stream: an absent password keeps the room's, "" removes it.
    if (password.value) params.password = password.value;
    else if (!room || removePw.checked) params.password = '';
    submit.disabled = true;
    try {
      const r = await call('Live.stream', params);
      const created = !room;
      show(r.data);
      toast(created ? t('me.created') : t('me.saved'), 'ok');
      // smooth only for those who have not asked for less motion.
      const still = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
      obs.scrollIntoView({ behavior: still ? 'auto' : 'smooth', block: 'start' });
    } catch (err) {
      if (err.errno === 1009) {
        error.textContent = t('me.lastEnded');
        room = null;
      } else {
        error.textContent = err.errno === 1001 && err.serverMessage ? err.serverMessage : err.message;
      }
    } finally {
      submit.disabled = false;
    }
  });

  function field(id, label, value) {
    const input = h('input', { id, readonly: true, value, class: 'mono', onfocus: (e) => e.target.select() });
    return h('div', { class: 'field copy-field' },
      h('span', {}, label),
      h('div', { class: 'copy-row' }, input,
        h('button', {
          type: 'button', class: 'btn btn-ghost', 'aria-label': t('me.copyLabel', { label }),
          onclick: async () => toast((await copy(value)) ? t('me.copied', { label }) : t('me.selectCopy'), 'ok'),
        }, icon('copy'), t('me.copy')),
      ),
    );
  }

  // show draws the room's OBS settings.
  function show(data) {
    room = data;
    name.value = data.room_name;
    password.value = '';
    password.disabled = false;
    removePw.checked = false;
    removeRow.hidden = !data.has_password;
    password.placeholder = data.has_password ? t('me.newPassword') : t('me.noPassword');
    pwHint.textContent = data.has_password ? t('me.hasPassword') : t('me.pwHint');
    submit.textContent = t('me.save');
    record.checked = data.record;
    pictures.setRoom();
    loadRecordings(data.room_id);
    // The same room's card is kept as it is: what the owner was typing
    // into it (a moderator's ID, the words) stays.
    const old = root.querySelector('#moderation');
    if (!old || old.dataset.roomId !== String(data.room_id)) {
      const modCard = moderationCard(data.room_id);
      if (old) old.replaceWith(modCard);
      else recordings.before(modCard);
    }
    schedules.setRoom(data.room_id);
    forwards.load(data.room_id);
    lives.load(data.room_id);
    const p = data.publish;
    // expires 0: the stream key lasts until it is reset.
    const keyLife = p.expires ? t('me.keyUntil', { when: formatDateTime(p.expires * 1000) }) : t('me.keyKeeps');
    drawBrowserLive();
    obs.hidden = false;
    obs.replaceChildren(
      h('h2', {}, t('me.obsTitle')),
      h('p', { class: 'muted' }, t('me.obsHow')),
      field('obs-server', t('me.server'), p.server),
      field('obs-key', t('me.streamKey'), p.stream_key),
      h('details', {},
        h('summary', {}, t('me.otherTool')),
        field('obs-url', t('me.fullURL'), p.url),
        h('pre', { class: 'mono small' }, `ffmpeg -re -i video.mp4 -c copy -f flv '${p.url}'`),
      ),
      h('p', { class: 'muted small' }, t('me.keySecret', { life: keyLife })),
      h('div', { class: 'row' },
        h('a', { class: 'btn btn-primary', href: `#/room/${data.room_id}`, id: 'open-my-room' }, icon('tv'), t('me.openRoom')),
        h('button', { class: 'btn btn-ghost', type: 'button', id: 'reset-key', onclick: resetKey }, t('me.resetKey')),
        h('button', { class: 'btn btn-danger', type: 'button', id: 'end-room', onclick: endRoom }, t('me.endRoom')),
      ),
    );
  }

  // drawBrowserLive draws "Go live from this browser": a preview of the
  // camera, the state, and the buttons of the state.
  const preview = h('video', { id: 'browser-preview', class: 'browser-preview', muted: true, autoplay: true, playsinline: true, hidden: true });
  preview.muted = true; // the attribute alone does not mute
  const liveState = h('p', { class: 'muted small', id: 'browser-live-state', role: 'status' });
  const liveError = h('p', { class: 'form-error', id: 'browser-live-error', role: 'alert' });
  const startBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'browser-go-live', onclick: goLive }, icon('tv'), t('me.goLiveBrowser'));
  const muteBtn = h('button', { class: 'btn btn-ghost', type: 'button', id: 'browser-mute', hidden: true, onclick: toggleMute }, t('me.muteMic'));
  const stopBtn = h('button', { class: 'btn btn-danger', type: 'button', id: 'browser-stop', hidden: true, onclick: () => stopLive(t('me.youStopped')) }, t('me.stop'));

  function drawBrowserLive() {
    if (!room || !room.publish || !room.publish.whip) {
      browserLive.hidden = true;
      return;
    }
    browserLive.hidden = false;
    if (browserLive.childElementCount) return;
    const supported = canWebRTC() && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    if (!supported) startBtn.disabled = true;
    liveState.textContent = supported
      ? t('me.browserIntro')
      : t('me.noBrowserLive');
    browserLive.replaceChildren(
      h('h2', {}, t('me.goLiveBrowser')),
      preview,
      liveState,
      liveError,
      h('div', { class: 'row' }, startBtn, muteBtn, stopBtn),
    );
  }

  function setLiveUI(state) {
    startBtn.hidden = state !== 'idle';
    startBtn.disabled = false;
    muteBtn.hidden = state !== 'live';
    stopBtn.hidden = state === 'idle';
    preview.hidden = state === 'idle';
    browserLive.dataset.state = state;
  }

  async function goLive() {
    liveError.textContent = '';
    startBtn.disabled = true;
    browserLive.dataset.state = 'starting';
    liveState.textContent = t('me.starting');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true });
    } catch (e) {
      setLiveUI('idle');
      liveState.textContent = '';
      liveError.textContent = e && e.name === 'NotAllowedError'
        ? t('me.notAllowed')
        : e && e.name === 'NotFoundError' ? t('me.noCamera') : t('me.cameraFailed', { why: e && e.message });
      return;
    }
    preview.srcObject = stream;
    setLiveUI('connecting');
    liveState.textContent = t('me.connecting');
    const cur = { session: null, stream };
    live = cur;
    try {
      cur.session = await publishWHIP(room.publish.whip, stream, (s) => {
        if (live !== cur) return;
        if (s === 'connected') {
          setLiveUI('live');
          liveState.textContent = t('me.liveNow');
        }
        if (s === 'failed') stopLive('', t('me.lost'));
      });
      if (live !== cur) cur.session.close();
    } catch (e) {
      if (live !== cur) return;
      let msg = e.message;
      if (e instanceof HTTPError) {
        if (e.status === 409) msg = t('me.refused409', { why: e.message });
        else if (e.status === 403) msg = t('me.refused403', { why: e.message });
        else msg = t('me.refused', { status: e.status, why: e.message });
      } else if (e.name === 'TypeError') {
        msg = t('me.noServer');
      }
      stopLive('', msg);
    }
  }

  // stopLive ends the WHIP session (DELETE) and the camera.
  function stopLive(state, error) {
    const cur = live;
    live = null;
    if (cur) {
      if (cur.session) cur.session.close();
      cur.stream.getTracks().forEach((tr) => tr.stop());
    }
    preview.srcObject = null;
    setLiveUI('idle');
    muteBtn.textContent = t('me.muteMic');
    liveState.textContent = state || '';
    liveError.textContent = error || '';
  }

  function toggleMute() {
    if (!live) return;
    const tracks = live.stream.getAudioTracks();
    const muted = tracks.some((tr) => tr.enabled);
    tracks.forEach((tr) => { tr.enabled = !muted; });
    muteBtn.textContent = muted ? t('me.unmuteMic') : t('me.muteMic');
    muteBtn.setAttribute('aria-pressed', String(muted));
    browserLive.dataset.muted = muted ? '1' : '';
  }

  // loadRecordings lists the room's recordings (Live.record.list), each
  // playable in the page and downloadable as one MP4.
  async function loadRecordings(roomID) {
    let list;
    try {
      list = await call('Live.record.list', { room_id: roomID, size: 50 });
    } catch (e) {
      recordings.replaceChildren(h('h2', {}, t('me.recordings')), h('p', { class: 'form-error' }, e.message));
      return;
    }
    const items = (list.data.records || []).map((r) => {
      const when = formatDateTime(r.start_time * 1000);
      const player = h('div', { class: 'record-player' });
      // While recording, the API gives the duration and size so far.
      const status = r.status === 'complete' ? '' : r.status === 'recording' ? ' · ' + t('me.recordingNow') : ` · ${r.status}${r.error ? ': ' + r.error : ''}`;
      return h('li', { class: 'record', id: `record-${r.id}` },
        h('div', { class: 'record-head' },
          h('div', {},
            h('strong', {}, when),
            h('div', { class: 'muted small record-meta' }, `${formatDuration(r.duration)} · ${formatSize(r.size)}${status}`),
          ),
          h('div', { class: 'row' },
            h('button', {
              class: 'btn btn-ghost', type: 'button', 'aria-label': t('me.play'), onclick: () => {
                player.replaceChildren(h('video', { src: r.mp4, controls: true, autoplay: true, playsinline: true, class: 'record-video' }));
              },
            }, icon('play'), t('me.play')),
            h('a', { class: 'btn btn-ghost', href: r.mp4, download: `mofang-${r.id}.mp4` }, t('me.download')),
            replayLink(r),
            r.status === 'recording' ? null : h('button', {
              class: 'btn btn-danger', type: 'button', onclick: async () => {
                try {
                  await call('Live.record.delete', { record_id: r.id });
                  toast(t('me.recordingDeleted'), 'ok');
                  loadRecordings(roomID);
                } catch (e) {
                  toast(e.message, 'error');
                }
              },
            }, t('me.delete')),
          ),
        ),
        player,
      );
    });
    recordings.replaceChildren(
      h('h2', {}, t('me.recordings')),
      items.length ? h('ul', { class: 'records' }, ...items) : h('p', { class: 'muted' }, t('me.noRecordings')),
    );
  }

  function resetKey() {
    dialog((close) => h('div', {},
      h('h2', {}, t('me.resetQ')),
      h('p', {}, t('me.resetWarn')),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-ghost', onclick: close }, t('me.cancel')),
        h('button', {
          class: 'btn btn-danger', id: 'reset-key-confirm', onclick: async () => {
            try {
              const r = await call('Live.stream.key.reset', { room_id: room.room_id });
              close();
              show(r.data);
              toast(t('me.newKey'), 'ok');
            } catch (e) {
              toast(e.message, 'error');
            }
          },
        }, t('me.resetKeyBtn')),
      ),
    ), { label: t('me.resetKey') });
  }

  function endRoom() {
    dialog((close) => h('div', {},
      h('h2', {}, t('me.endQ')),
      h('p', {}, t('me.endWarn')),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-ghost', onclick: close }, t('me.cancel')),
        h('button', {
          class: 'btn btn-danger', id: 'end-room-confirm', onclick: async () => {
            try {
              await call('Live.stream.status', { room_id: room.room_id, type: 'stop' });
              close();
              toast(t('me.roomEnded'), 'ok');
              go('/rooms');
            } catch (e) {
              toast(e.message, 'error');
            }
          },
        }, t('me.endRoomBtn')),
      ),
    ), { label: t('me.endRoomBtn') });
  }

  root.append(
    h('div', { class: 'page page-me' },
      h('header', { class: 'topbar' },
        h('a', { class: 'btn btn-icon', href: '#/rooms', 'aria-label': t('me.back'), id: 'back' }, icon('back')),
        h('h1', {}, t('me.title')), langSwitch(),
      ),
      form,
      pictures,
      browserLive,
      obs,
      schedules.el,
      forwards.el,
      recordings,
      lives.el,
    ),
  );

  // An existing room: its settings. Live.stream.list shows whether the
  // user has one; Live.stream with its own name (and no password) then
  // changes nothing and returns fresh publish URLs.
  (async () => {
    try {
      const list = await call('Live.stream.list', {});
      const mine = (list.stream_list || []).find((r) => r.user && r.user.id === me.id);
      if (!mine) {
        name.value = t('me.defaultName', { name: me.nickname || me.username || '' });
        return;
      }
      const r = await call('Live.stream', { room_name: mine.room_name });
      show(r.data);
      pictures.setRoom(mine.cover);
    } catch (e) {
      if (e.errno !== 1005) error.textContent = e.message;
    }
  })();

  // Leaving the page ends a live from this browser.
  return () => { forwards.stop(); stopLive(); };
}
