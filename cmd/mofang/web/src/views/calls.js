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
      'aria-label': `Call ${name}`, title: `Video call with ${name}`,
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
      toast('Hang up the call first.', 'warn');
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
        if (c.role === 'callee' && c.phase === 'ringing') this.finish(c, 'You answered on another screen.');
        break;
      case 'reject':
        this.finish(c, c.role === 'caller' ? `${name} declined the call.` : '', 'warn');
        break;
      case 'timeout':
        this.finish(c, c.role === 'caller' ? `No answer from ${name}.` : `You missed a call from ${name}.`, 'warn');
        break;
      case 'hangup':
        if (ev.reason === 'left') this.finish(c, `${name} left the room: the call ended.`, 'warn');
        else this.finish(c, c.phase === 'ringing' ? `${name} cancelled the call.` : `${name} hung up.`);
        break;
      case 'signal':
        if (c.media) c.media.handle(ev.data);
        break;
      case 'relay':
        if (c.media) c.media.useRelay(ev.relay, `${name} asked for the server's relay.`);
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
      h('h2', {}, `${name} is calling you`),
      h('p', { class: 'muted' }, 'A video call with your camera and microphone.'),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-danger', type: 'button', id: 'call-reject', onclick: () => { close(); this.reject(c); } }, 'Decline'),
        h('button', { class: 'btn btn-accept', type: 'button', id: 'call-accept', onclick: () => { close(); this.accept(c); } }, icon('phone'), 'Accept'),
      ),
    ), { label: 'Incoming call', onClose: () => this.reject(c) });
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
      this.finish(c, e.errno === Errno.NO_CALL ? `${nickname(c.peer)}'s call has ended.` : e.message, 'warn');
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
    this.finish(c, c.phase === 'connected' ? `Call ended (${formatDuration((Date.now() - c.since) / 1000)}).` : '');
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
      class: 'btn small glass', type: 'button', id: 'call-relay', title: 'When the picture does not come through: send the call through the server',
      onclick: () => c.media && c.media.relay('You asked for the server\'s relay.'),
    }, 'Through the server');
    const mute = h('button', { class: 'btn small glass', type: 'button', id: 'call-mute', onclick: () => this.toggleMute(c) }, 'Mute');
    const hang = h('button', { class: 'btn btn-hangup', type: 'button', id: 'call-hangup', onclick: () => this.hangup() }, icon('phoneOff'), 'Hang up');
    const panel = h('section', { class: 'call', id: 'call', 'aria-label': `Call with ${nickname(c.peer)}`, dataset: { role: c.role } },
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
    if (c.phase === 'calling') text = `Calling ${name}…`;
    else if (c.media_state === 'failed') text = c.detail || 'The call could not connect.';
    else if (c.phase === 'connected') text = `${name} · ${formatDuration((Date.now() - c.since) / 1000)}`;
    else text = c.route === 'relay' ? `Connecting to ${name} through the server…` : `Connecting to ${name}…`;
    status.textContent = text;
    route.textContent = c.phase === 'connected' ? (c.route === 'relay' ? 'through the server' : 'direct') : '';
    relay.hidden = !c.media || c.route === 'relay';
    mute.hidden = !c.local;
  }

  toggleMute(c) {
    if (!c.local) return;
    const tracks = c.local.getAudioTracks();
    const muted = tracks.some((t) => t.enabled);
    tracks.forEach((t) => { t.enabled = !muted; });
    c.ui.mute.textContent = muted ? 'Unmute' : 'Mute';
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
  if (stream) stream.getTracks().forEach((t) => t.stop());
}

// inviteError says why Live.call.invite failed.
function inviteError(e, user) {
  const name = nickname(user);
  switch (e.errno) {
    case Errno.BUSY:
      return /^you are/i.test(e.serverMessage || '') ? 'You are in another call: hang it up first.' : `${name} is in another call.`;
    case Errno.NOT_IN_ROOM:
      return `${name} is not in the room any more.`;
    case Errno.SLOW_DOWN:
      return 'Too many calls at once: wait a few seconds.';
    case Errno.JOIN_FIRST:
      return 'Not in the room yet: wait a moment.';
    default:
      return e.message;
  }
}
