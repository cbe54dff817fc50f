// Share: every room's link, /r/<room id>, which the server sends to the
// room's page (#/room/<id>); the page asks for the room's password when it
// has one (checked by the server) and for the login first when needed.
// The button uses the system's share sheet where there is one
// (navigator.share), else copies the link.

import { copy, h, toast } from '../ui.js';
import { t } from '../i18n/index.js';

// shareURL is the link of a room.
export function shareURL(roomId) {
  return `${location.origin}/r/${Number(roomId)}`;
}

// shareButton is the room's Share button; name() gives the room's name
// for the share sheet.
export function shareButton(roomId, name) {
  return h('button', {
    class: 'btn glass small share', type: 'button', id: 'share', title: t('share.title'),
    onclick: async () => {
      const url = shareURL(roomId);
      if (navigator.share) {
        try {
          await navigator.share({ title: name() || t('share.brand'), url });
          return;
        } catch (e) {
          if (e && e.name === 'AbortError') return; // the user closed the sheet
          // no share target: copy instead
        }
      }
      if (await copy(url)) toast(t('share.copied', { url }), 'ok');
      else toast(url, 'info');
    },
  }, t('share.share'));
}
