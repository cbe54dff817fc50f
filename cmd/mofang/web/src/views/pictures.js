// Pictures: the avatar and the room cover. "My room" uploads them
// (POST /upload/avatar, /upload/cover?room_id=N, the token in
// Authorization; the server checks, re-encodes and stores them and answers
// {errno, errmsg, data: {url}}); the room shows the cover behind the stage
// while no video plays (the room list shows it too: thumb.js).

import { refreshSession, session } from '../api.js';
import { avatar, h, toast } from '../ui.js';
import { locale, t } from '../i18n/index.js';

// safeImage is url when it is one of ours (/images/<hash>.png|jpg) or
// a plain http(s) URL, for use in CSS url(""); else ''.
export function safeImage(url) {
  if (typeof url !== 'string') return '';
  if (/^\/images\/[0-9a-f]{64}\.(png|jpg)$/.test(url)) return url;
  if (/^https?:\/\/[^\s"'()\\]+$/.test(url)) return url;
  return '';
}

// showCover puts the room's cover behind the stage while no video plays.
export function showCover(stage, url) {
  url = safeImage(url);
  if (url) {
    stage.style.setProperty('--room-cover', `url("${url}")`);
    stage.dataset.cover = url;
  } else {
    stage.style.removeProperty('--room-cover');
    delete stage.dataset.cover;
  }
}

// uploadPicture POSTs a file to path; it returns the answer's data
// ({url, ...}) or throws an Error with the server's message.
async function uploadPicture(path, file) {
  const send = () => fetch(path, {
    method: 'POST',
    headers: { Authorization: 'jwt ' + (session.get()?.access_token || ''), 'Accept-Language': locale() },
    body: file, // the raw picture: the server reads its type from its bytes
  });
  let res = await send();
  let body = await res.json().catch(() => ({}));
  if (body.errno === 1005 && await refreshSession()) {
    res = await send();
    body = await res.json().catch(() => ({}));
  }
  if (body.errno !== 1000) throw new Error(body.errmsg || t('pictures.uploadFailed', { status: res.status }));
  return body.data;
}

// picturesCard is "My room"'s section to change the avatar and, once the
// room exists (roomId()), its cover.
export function picturesCard(roomId, onCover) {
  const me = () => session.get()?.user || {};
  const avatarBox = h('span', { class: 'picture-avatar', id: 'my-avatar' }, avatar(me(), 'lg'));
  const coverImg = h('img', { class: 'picture-cover', id: 'my-cover', alt: '', hidden: true });
  const avatarInput = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', id: 'avatar-file', class: 'file-input' });
  const coverInput = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', id: 'cover-file', class: 'file-input' });
  const status = h('p', { class: 'muted small', id: 'pictures-status', role: 'status' }, t('pictures.hint'));
  const pick = async (input, path, done) => {
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    status.textContent = t('pictures.uploading');
    try {
      const d = await uploadPicture(path(), file);
      done(d.url);
      status.textContent = t('pictures.saved');
      toast(t('pictures.pictureSaved'), 'ok');
    } catch (e) {
      status.textContent = e.message;
      status.classList.add('form-error');
      return;
    }
    status.classList.remove('form-error');
  };
  avatarInput.addEventListener('change', () => pick(avatarInput, () => '/upload/avatar', (url) => {
    session.setUser({ avatar: url });
    avatarBox.replaceChildren(avatar(me(), 'lg'));
  }));
  coverInput.addEventListener('change', () => pick(coverInput, () => `/upload/cover?room_id=${encodeURIComponent(roomId())}`, (url) => {
    setCover(url);
    if (onCover) onCover(url);
  }));
  const coverRow = h('label', { class: 'btn btn-ghost', hidden: true, id: 'cover-pick' }, t('pictures.cover'), coverInput);
  const card = h('section', { class: 'card pictures', id: 'pictures' },
    h('h2', {}, t('pictures.title')),
    h('div', { class: 'row pictures-row' },
      avatarBox,
      h('label', { class: 'btn btn-ghost', id: 'avatar-pick' }, t('pictures.avatar'), avatarInput),
      coverImg,
      coverRow,
    ),
    status,
  );
  function setCover(url) {
    const u = safeImage(url);
    coverImg.hidden = !u;
    if (u) coverImg.src = u;
  }
  // setRoom shows the cover button once there is a room, and its cover
  // (undefined: unchanged).
  card.setRoom = (cover) => {
    coverRow.hidden = !roomId();
    if (cover !== undefined) setCover(cover);
  };
  return card;
}
