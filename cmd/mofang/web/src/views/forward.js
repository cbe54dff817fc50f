// The "Restream" section of My room: the RTMP(S) destinations the room's
// lives are pushed to (YouTube, Twitch, Bilibili, another MoFang), with
// the state of each push, refreshed every few seconds (Live.forward.*).
import { call } from '../api.js';
import { formatSize } from '../format.js';
import { h, toast } from '../ui.js';
import { t, tOr } from '../i18n/index.js';

// forwardSection returns the section's element, load(roomID) to show a
// room's destinations, and stop() to end the refreshing.
export function forwardSection() {
  const url = h('input', { id: 'forward-url', maxlength: 512, placeholder: 'rtmp://a.rtmp.youtube.com/live2', autocomplete: 'off', spellcheck: false });
  const key = h('input', { id: 'forward-key', type: 'password', maxlength: 256, placeholder: t('forward.keyPlaceholder'), autocomplete: 'off' });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'forward-error' });
  const list = h('ul', { class: 'forwards', id: 'forward-list' });
  const addBtn = h('button', { class: 'btn btn-primary', type: 'submit', id: 'forward-add' }, t('forward.add'));
  const form = h('form', { class: 'forward-form', id: 'forward-form' },
    h('label', { class: 'field' }, h('span', {}, t('forward.url')), url),
    h('label', { class: 'field' }, h('span', {}, t('forward.key')), key),
    error,
    addBtn,
  );
  const el = h('section', { class: 'card forward', id: 'forward', hidden: true },
    h('h2', {}, t('forward.title')),
    h('p', { class: 'muted small' }, t('forward.intro')),
    list,
    form,
  );
  let roomID = null;
  let timer = null;

  function draw(items) {
    if (!items.length) {
      list.replaceChildren(h('li', { class: 'muted' }, t('forward.none')));
      return;
    }
    list.replaceChildren(...items.map((f) => h('li', { class: `forward-item forward-${f.state}`, 'data-id': f.id },
      h('div', { class: 'forward-main' },
        h('span', { class: 'mono small forward-url' }, f.url),
        h('span', { class: 'mono small muted forward-key' }, f.key),
      ),
      h('div', { class: 'forward-status' },
        h('span', { class: `forward-state state-${f.state}` }, tOr('forward.state.' + f.state, f.state)),
        f.reason ? h('span', { class: 'small forward-reason' }, f.reason) : null,
        f.bytes_sent ? h('span', { class: 'small muted' }, t('forward.sent', { size: formatSize(f.bytes_sent) })) : null,
      ),
      h('button', { class: 'btn btn-ghost btn-small forward-remove', type: 'button', onclick: () => remove(f) }, t('forward.remove')),
    )));
  }

  async function refresh() {
    if (roomID == null) return;
    try {
      const r = await call('Live.forward.list', { room_id: roomID });
      draw(r.data.forwards || []);
      el.hidden = false;
    } catch (e) {
      if (e.errno === 1006) { el.hidden = true; return; } // restreaming off here
      error.textContent = e.message;
    }
  }

  async function remove(f) {
    try {
      await call('Live.forward.remove', { room_id: roomID, forward_id: f.id });
      toast(t('forward.removed'));
    } catch (e) {
      error.textContent = e.message;
    }
    refresh();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    addBtn.disabled = true;
    try {
      await call('Live.forward.add', { room_id: roomID, url: url.value.trim(), key: key.value.trim() });
      url.value = '';
      key.value = '';
      toast(t('forward.added'));
    } catch (e) {
      error.textContent = e.message;
    } finally {
      addBtn.disabled = false;
    }
    refresh();
  });

  return {
    el,
    load(id) {
      roomID = id;
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, 3000);
    },
    stop() { clearInterval(timer); },
  };
}
