// 1:1 calls in the live room (seed 004; README, "Calls and co-hosts"):
// a "Call" button beside each member online, an incoming-call prompt with
// Accept and Decline, and during a call a panel with both videos (the
// other party's, with sound, and this camera's preview), the call's
// state and route, "Mute", "Through the server" and "Hang up". The call's
// events come as Live.call.events on the room's websocket (onEvent);
// its media is call.js's. Busy, no answer, declined, hung up and left
// are said in a toast.

import { Errno } from '../api.js';
import { CallMedia, cameraError, canCall, openCamera } from '../call.js';
import { formatDuration } from '../format.js';
import { avatar, dialog, h, icon, nickname, toast } from '../ui.js';
import { t } from '../i18n/index.js';

export class Calls {
  // roomId: the room's id; me: the user; socket: the room's RpcSocket;
  // page: where the call panel goes; roomVideo: the room's own video,
  // turned down during a call; onChange(): the call began or ended (the
  // online list redraws its buttons).
  constructor({ roomId, me, socket, page, roomVideo, onChange }) {
    this.roomId = roomId;
    this.me = me;
    this.socket = socket;
    this.page = page;
    this.roomVideo = roomVideo;
    this.onChange = onChange || (() => {});
    this.call = null; // the call in progress, ringing or answered
    this.enabled = false; // joined: calls can be placed
  }

  get busy() {
    return this.call !== null;
  }

  // button is the "Call" button of a member of the online list (none for
  // oneself, or where the browser cannot send a camera).
  button(user) {
    if (!canCall() || !user || user.id === this.me.id) return null;
    const name = nickname(user);
    return h('button', {
      class: 'btn mini call-btn', type: 'button', dataset: { userId: user.id },
      'aria-label': t('calls.call', { name }), title: t('calls.videoWith', { name }),
      disabled: this.busy || !this.enabled,
      onclick: (e) => {
        e.stopPropagation();
        this.invite(user);
      },
    }, icon('phone'));
  }

  // invite calls a member: the camera first, then Live.call.invite; the
  // panel says "Calling…" until the callee answers.
  async invite(user) {
    if (this.call) {
      toast(t('calls.hangFirst'), 'warn');
      return;
    }
    const c = { id: '', peer: user, role: 'caller', phase: 'calling', early: [] };
    this.call = c;
    this.onChange();
    this.show(c);
    try {
      c.local = await openCamera();
    } catch (e) {
      this.finish(c, cameraError(e), 'error');
      return;
    }
    if (this.call !== c) {
      stopTracks(c.local);
      return;
    }
    c.ui.local.srcObject = c.local;
    let r;
    try {
      r = await this.socket.call('Live.call.invite', { room_id: this.roomId, user_id: user.id });
    } catch (e) {
      this.finish(c, inviteError(e, user), 'warn');
      return;
    }
    const d = r.data;
    if (this.call !== c) {
      // Hung up while the invitation was on its way.
      this.socket.call('Live.call.hangup', { call_id: d.call_id }).catch(() => {});
      return;
    }
    c.id = d.call_id;
    c.peer = d.peer || user;
    c.ice = d.ice_servers;
    c.ui.panel.dataset.callId = c.id;
    // Events of this call that came before its id did.
    const early = c.early;
    c.early = null;
    for (const ev of early) this.onEvent(ev);
  }

  // onEvent takes the params of a Live.call.events notification.
  onEvent(ev) {
    if (!ev || typeof ev !== 'object') return;
    if (ev.type === 'invite') {
      this.incoming(ev);
      return;
    }
    const c = this.call;
    if (c && c.early) {
      if (c.early.length < 32) c.early.push(ev);
      return;
    }
    if (!c || ev.call_id !== c.id) return;
    const name = nickname(c.peer);
    switch (ev.type) {
      case 'accept':
        if (c.role === 'caller' && c.phase === 'calling') {
          c.phase = 'connecting';
          this.startMedia(c, true);
          this.draw(c);
        }
        break;
      case 'answered':
        if (c.role === 'callee' && c.phase === 'ringing') this.finish(c, t('calls.otherScreen'));
        break;
      case 'reject':
        this.finish(c, c.role === 'caller' ? t('calls.declined', { name }) : '', 'warn');
        break;
      case 'timeout':
        this.finish(c, c.role === 'caller' ? t('calls.noAnswer', { name }) : t('calls.missed', { name }), 'warn');
        break;
      case 'hangup':
        if (ev.reason === 'left') this.finish(c, t('calls.peerLeft', { name }), 'warn');
        else this.finish(c, c.phase === 'ringing' ? t('calls.cancelled', { name }) : t('calls.hungUp', { name }));
        break;
      case 'signal':
        if (c.media) c.media.handle(ev.data);
        break;
      case 'relay':
        if (c.media) c.media.useRelay(ev.relay, t('calls.peerRelay', { name }));
        break;
    }
  }

  // incoming rings: the prompt with Accept and Decline.
  incoming(ev) {
    if (this.call || !ev.call_id || !ev.from) return; // one call at a time (the server says so too)
    const c = { id: ev.call_id, peer: ev.from, role: 'callee', phase: 'ringing', ice: ev.ice_servers };
    this.call = c;
    this.onChange();
    const name = nickname(ev.from);
    c.prompt = dialog((close) => h('div', { class: 'call-prompt', id: 'call-incoming', dataset: { callId: c.id } },
      avatar(ev.from, 'lg'),
      h('h2', {}, t('calls.calling', { name })),
      h('p', { class: 'muted' }, t('calls.videoCall')),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-danger', type: 'button', id: 'call-reject', onclick: () => { close(); this.reject(c); } }, t('calls.decline')),
        h('button', { class: 'btn btn-accept', type: 'button', id: 'call-accept', onclick: () => { close(); this.accept(c); } }, icon('phone'), t('calls.accept')),
      ),
    ), { label: t('calls.incoming'), onClose: () => this.reject(c) });
  }

  // accept answers: the camera, the connection ready for the caller's
  // offer, then Live.call.accept.
  async accept(c) {
    if (this.call !== c || c.phase !== 'ringing') return;
    c.prompt = null;
    c.phase = 'connecting';
    this.show(c);
    try {
      c.local = await openCamera();
    } catch (e) {
      this.socket.call('Live.call.reject', { call_id: c.id }).catch(() => {});
      this.finish(c, cameraError(e), 'error');
      return;
    }
    if (this.call !== c) {
      stopTracks(c.local);
      return;
    }
    c.ui.local.srcObject = c.local;
    this.startMedia(c, false);
    try {
      await this.socket.call('Live.call.accept', { call_id: c.id });
    } catch (e) {
      this.finish(c, e.errno === Errno.NO_CALL ? t('calls.ended', { name: nickname(c.peer) }) : e.message, 'warn');
    }
  }

  reject(c) {
    if (this.call !== c || c.phase !== 'ringing') return;
    c.prompt = null;
    this.socket.call('Live.call.reject', { call_id: c.id }).catch(() => {});
    this.finish(c, '');
  }

  // hangup ends the call, ringing or answered.
  hangup() {
    const c = this.call;
    if (!c) return;
    if (c.id) this.socket.call('Live.call.hangup', { call_id: c.id }).catch(() => {});
    this.finish(c, c.phase === 'connected' ? t('calls.endedAfter', { d: formatDuration((Date.now() - c.since) / 1000) }) : '');
  }

  startMedia(c, offerer) {
    c.media = new CallMedia({
      offerer,
      iceServers: c.ice,
      local: c.local,
      send: (data) => this.socket.call('Live.call.signal', { call_id: c.id, data }).catch(() => {}),
      askRelay: async () => (await this.socket.call('Live.call.relay', { call_id: c.id })).data,
      onRemote: (stream) => {
        if (this.call !== c) return;
        const v = c.ui.remote;
        if (v.srcObject !== stream) {
          v.srcObject = stream;
          v.play().catch(() => {});
        }
      },
      onRoute: (route, state, detail) => {
        if (this.call !== c) return;
        c.route = route;
        c.media_state = state;
        if (state === 'connected') {
          c.phase = 'connected';
          if (!c.since) c.since = Date.now();
        }
        c.detail = state === 'failed' ? detail : '';
        if (state === 'failed' && detail) toast(detail, 'error');
        this.draw(c);
      },
    });
    c.media.start();
  }

  // show puts the call's panel on the page.
  show(c) {
    if (c.ui) {
      this.draw(c);
      return;
    }
    const remote = h('video', { id: 'call-remote', class: 'call-remote', autoplay: true, playsinline: true });
    const local = h('video', { id: 'call-local', class: 'call-local', autoplay: true, playsinline: true, muted: true });
    local.muted = true; // the attribute alone does not mute
    const status = h('p', { class: 'call-status', id: 'call-status', role: 'status' });
    const route = h('span', { class: 'call-route', id: 'call-route' });
    const relay = h('button', {
      class: 'btn small glass', type: 'button', id: 'call-relay', title: t('calls.relayTitle'),
      onclick: () => c.media && c.media.relay(t('calls.youRelay')),
    }, t('calls.throughServer'));
    const mute = h('button', { class: 'btn small glass', type: 'button', id: 'call-mute', onclick: () => this.toggleMute(c) }, t('calls.mute'));
    const hang = h('button', { class: 'btn btn-hangup', type: 'button', id: 'call-hangup', onclick: () => this.hangup() }, icon('phoneOff'), t('calls.hangUp'));
    const panel = h('section', { class: 'call', id: 'call', 'aria-label': t('calls.with', { name: nickname(c.peer) }), dataset: { role: c.role } },
      h('div', { class: 'call-videos' }, remote, local),
      h('div', { class: 'call-bar' }, h('div', { class: 'call-info' }, status, route), h('div', { class: 'call-buttons' }, mute, relay, hang)),
    );
    c.ui = { panel, remote, local, status, route, relay, mute };
    this.page.append(panel);
    this.volume = this.roomVideo.volume;
    this.roomVideo.volume = Math.min(this.volume, 0.2); // the call first
    clearInterval(this.clock);
    this.clock = setInterval(() => this.draw(c), 1000);
    this.draw(c);
  }

  draw(c) {
    if (!c.ui || this.call !== c) return;
    const { panel, status, route, relay, mute } = c.ui;
    const name = nickname(c.peer);
    panel.dataset.phase = c.phase;
    panel.dataset.route = c.route || '';
    panel.dataset.media = c.media_state || '';
    let text;
    if (c.phase === 'calling') text = t('calls.callingName', { name });
    else if (c.media_state === 'failed') text = c.detail || t('calls.noConnect');
    else if (c.phase === 'connected') text = `${name} · ${formatDuration((Date.now() - c.since) / 1000)}`;
    else text = c.route === 'relay' ? t('calls.connectingRelay', { name }) : t('calls.connectingTo', { name });
    status.textContent = text;
    route.textContent = c.phase === 'connected' ? (c.route === 'relay' ? t('calls.routeRelay') : t('calls.routeDirect')) : '';
    relay.hidden = !c.media || c.route === 'relay';
    mute.hidden = !c.local;
  }

  toggleMute(c) {
    if (!c.local) return;
    const tracks = c.local.getAudioTracks();
    const muted = tracks.some((tr) => tr.enabled);
    tracks.forEach((tr) => { tr.enabled = !muted; });
    c.ui.mute.textContent = muted ? t('calls.unmute') : t('calls.mute');
    c.ui.mute.setAttribute('aria-pressed', String(muted));
  }

  // finish ends the call here: its prompt, connections, camera and
  // panel, with a message for people (none when empty).
  finish(c, message, kind = 'info') {
    if (this.call !== c) return;
    this.call = null;
    if (c.prompt) c.prompt();
    if (c.media) c.media.close();
    stopTracks(c.local);
    clearInterval(this.clock);
    if (c.ui) {
      c.ui.remote.srcObject = null;
      c.ui.local.srcObject = null;
      c.ui.panel.remove();
      this.roomVideo.volume = this.volume;
    }
    if (message) toast(message, kind);
    this.onChange();
  }

  // lost: the websocket dropped or the page is left; the server hangs the
  // call up ("left") for the other party.
  lost(message) {
    if (this.call) this.finish(this.call, message || '', 'warn');
  }
}

function stopTracks(stream) {
  if (stream) stream.getTracks().forEach((tr) => tr.stop());
}

// inviteError says why Live.call.invite failed.
function inviteError(e, user) {
  const name = nickname(user);
  switch (e.errno) {
    case Errno.BUSY:
      return /^you are/i.test(e.serverMessage || '') ? t('calls.youBusy') : t('calls.busy', { name });
    case Errno.NOT_IN_ROOM:
      return t('calls.notInRoom', { name });
    case Errno.SLOW_DOWN:
      return t('calls.tooMany');
    case Errno.JOIN_FIRST:
      return t('calls.notYet');
    default:
      return e.message;
  }
}
