// The picture of a room in the room list: its cover, else while it is
// live its thumbnail (Live.stream.list's `thumb`, a JPEG of the stream's
// newest key frame that the server refreshes every few seconds), else
// (or when the picture does not load) what `fallback()` makes.

import { h } from '../ui.js';

const safeURL = (u) => typeof u === 'string' && /^(https?:\/\/|\/)/.test(u);

export function roomPicture(room, fallback) {
  const src = safeURL(room.cover) ? room.cover : room.status && safeURL(room.thumb) ? room.thumb : '';
  if (!src) return fallback();
  const box = h('span', { class: 'room-thumb' + (room.cover ? '' : ' is-thumb') });
  const img = h('img', { src, alt: '', decoding: 'async' });
  img.addEventListener('error', () => box.replaceWith(fallback()));
  box.append(img);
  return box;
}
