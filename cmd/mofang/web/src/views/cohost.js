// Co-hosts (连麦) in the live room (README, "Calls and co-hosts"): a
// viewer asks "Request to co-host", or the host invites a viewer from the
// online list; the host accepts or declines requests, the viewer an
// invitation. The guest publishes camera and microphone over WHIP to the
// guest stream the server gave (Live.cohost.accept's publish, or the
// "accept" event's), and every page in the room shows the guest's video
// beside the host's from the "cohost" room events (state "on", "live",
// "off") and Live.room.join's cohosts: over WebRTC (WHEP) in low-latency
// mode with the room player's fallback to HTTP-FLV, the guest itself its
// own camera. The host has "End co-host", the guest "Leave".

import { Errno } from '../api.js';
import { cameraError, canCall, openCamera } from '../call.js';
import { LivePlayer } from '../player.js';
import { avatar, dialog, h, icon, nickname, toast } from '../ui.js';
import { canWebRTC, publishWHIP } from '../webrtc.js';

const RETRY_LOST = 1000; // ms before the guest's video is played again after it broke
const MAX_RETRIES = 30; // ... at most this many times in a row

export class Cohost {
  // roomId; me: the user; socket: the room's RpcSocket; stage: the room's
  // stage (the guest's tile goes there); host(): the room's owner (a
  // user) once known; hostOnline(): whether the host is in the room now;
  // mode(): 'webrtc' or 'flv', how the room plays; onChange(): the online
  // list redraws its invite buttons.
  constructor({ roomId, me, socket, stage, host, hostOnline, mode, onChange }) {
    this.roomId = roomId;
    this.me = me;
    this.socket = socket;
    this.stage = stage;
    this.host = host;
    this.hostOnline = hostOnline || (() => true);
    this.mode = mode;
    this.onChange = onChange || (() => {});
    this.enabled = false; // joined
    this.session = null; // the room's co-host on now: {user, play, live}
    this.asked = false; // this viewer's request waits for the host
    this.invited = new Set(); // the host's invitations waiting, by user id
    this.requests = new Map(); // the host's requests waiting: user id -> user
    this.prompt = null; // closes the invitation prompt
    this.publishing = null; // this user as guest: {stream, session}
    this.tile = null; // the guest's tile: {el, video, player, key, retries}
    this.box = h('div', { class: 'cohost-box', id: 'cohost-box' });
    this.draw();
  }

  get isHost() {
    const host = this.host();
    return !!host && host.id === this.me.id;
  }

  setEnabled(on) {
    this.enabled = on;
    if (!on) {
      // Off the room: the server forgets this socket's request.
      this.asked = false;
      this.requests.clear();
      this.invited.clear();
    }
    this.draw();
  }

  // inviteButton is the host's "Invite to co-host" of a viewer in the
  // online list.
  inviteButton(user) {
    if (!this.isHost || !user || user.id === this.me.id || !canWebRTC()) return null;
    const name = nickname(user);
    const waiting = this.invited.has(user.id);
    return h('button', {
      class: 'btn mini cohost-invite', type: 'button', dataset: { userId: user.id },
      'aria-label': `Invite ${name} to co-host`, title: waiting ? `Invited ${name}: waiting for an answer` : `Invite ${name} to co-host`,
      disabled: !this.enabled || !!this.session || waiting,
      onclick: (e) => {
        e.stopPropagation();
        this.invite(user);
      },
    }, icon('users'));
  }

  // draw redraws the side box and the online list's buttons.
  draw() {
    this.drawBox();
    this.onChange();
  }

  // drawBox redraws the side box: the viewer's request button (while
  // the host is in the room), or the host's requests.
  drawBox() {
    const items = [];
    if (this.isHost) {
      for (const u of this.requests.values()) {
        const name = nickname(u);
        items.push(h('li', { class: 'cohost-request', dataset: { userId: u.id } },
          avatar(u, 'sm'),
          h('span', { class: 'grow' }, h('b', {}, name), ' asks to co-host'),
          h('button', { class: 'btn small btn-ghost cohost-decline', type: 'button', onclick: () => this.answer(u, false) }, 'Decline'),
          h('button', { class: 'btn small btn-primary cohost-accept', type: 'button', disabled: !!this.session, onclick: () => this.answer(u, true) }, 'Accept'),
        ));
      }
      this.box.replaceChildren(...(items.length ? [h('ul', { class: 'cohost-requests', id: 'cohost-requests' }, ...items)] : []));
    } else if (this.enabled && this.host() && canCall() && !this.session && (this.asked || this.hostOnline())) {
      this.box.replaceChildren(this.asked
        ? h('div', { class: 'row' },
          h('span', { class: 'muted small grow', id: 'cohost-waiting' }, 'Asked to co-host: waiting for the host…'),
          h('button', { class: 'btn small btn-ghost', type: 'button', id: 'cohost-cancel', onclick: () => this.withdraw() }, 'Cancel'))
        : h('button', { class: 'btn small btn-ghost', type: 'button', id: 'cohost-request', onclick: () => this.request() }, icon('users'), 'Request to co-host'));
    } else {
      this.box.replaceChildren();
    }
    this.box.hidden = !this.box.childElementCount;
  }

  async request() {
    if (this.asked) return;
    this.asked = true;
    this.draw();
    try {
      await this.socket.call('Live.cohost.request', { room_id: this.roomId });
      toast('Asked the host. You go on when they accept.', 'ok');
    } catch (e) {
      this.asked = false;
      this.draw();
      toast(offerError(e, 'the host'), 'warn');
    }
  }

  withdraw() {
    if (!this.asked) return;
    this.asked = false;
    this.draw();
    this.socket.call('Live.cohost.reject', { room_id: this.roomId }).catch(() => {});
  }

  async invite(user) {
    this.invited.add(user.id);
    this.onChange();
    try {
      await this.socket.call('Live.cohost.invite', { room_id: this.roomId, user_id: user.id });
      toast(`Invited ${nickname(user)} to co-host.`, 'ok');
    } catch (e) {
      this.invited.delete(user.id);
      this.onChange();
      toast(offerError(e, nickname(user)), 'warn');
    }
  }

  // answer is the host's Accept or Decline of a viewer's request.
  async answer(user, yes) {
    this.requests.delete(user.id);
    this.draw();
    try {
      if (yes) await this.socket.call('Live.cohost.accept', { room_id: this.roomId, user_id: user.id });
      else await this.socket.call('Live.cohost.reject', { room_id: this.roomId, user_id: user.id });
    } catch (e) {
      toast(e.errno === Errno.NO_COHOST ? `${nickname(user)} is no longer asking.` : e.message, 'warn');
    }
  }

  // onEvent takes the params of a Live.cohost.events notification.
  onEvent(ev) {
    if (!ev || typeof ev !== 'object' || !ev.from) return;
    const name = nickname(ev.from);
    const id = ev.from.id;
    switch (ev.type) {
      case 'invite':
        this.invitation(ev.from);
        break;
      case 'request':
        if (!this.isHost) return;
        this.requests.set(id, ev.from);
        this.draw();
        toast(`${name} asks to co-host.`);
        break;
      case 'accept':
        if (this.isHost) {
          this.invited.delete(id);
          this.onChange();
        } else {
          this.asked = false;
          this.draw();
          if (ev.publish) this.startPublishing(ev.publish);
        }
        break;
      case 'reject':
        if (this.isHost) {
          this.invited.delete(id);
          this.onChange();
          toast(`${name} declined to co-host.`, 'warn');
        } else if (this.asked) {
          this.asked = false;
          this.draw();
          toast('The host declined your request to co-host.', 'warn');
        }
        break;
      case 'cancel':
        if (this.isHost) {
          this.requests.delete(id);
          this.draw();
        } else {
          this.closePrompt();
          toast('The host withdrew the invitation.');
        }
        break;
      case 'timeout':
        if (this.isHost) {
          this.requests.delete(id);
          this.invited.delete(id);
          this.draw();
        } else {
          if (this.asked) toast('The host did not answer your request to co-host.', 'warn');
          this.asked = false;
          this.closePrompt();
          this.draw();
        }
        break;
    }
  }

  // invitation prompts a viewer the host invited.
  invitation(from) {
    this.closePrompt();
    const name = nickname(from);
    this.prompt = dialog((close) => h('div', { class: 'call-prompt', id: 'cohost-invitation' },
      avatar(from, 'lg'),
      h('h2', {}, `${name} invites you to co-host`),
      h('p', { class: 'muted' }, 'Everyone in the room sees and hears you beside the host, from your camera and microphone.'),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-danger', type: 'button', id: 'cohost-invite-reject', onclick: () => { close(); this.prompt = null; this.declineInvitation(); } }, 'Decline'),
        h('button', { class: 'btn btn-accept', type: 'button', id: 'cohost-invite-accept', onclick: () => { close(); this.prompt = null; this.acceptInvitation(); } }, 'Go on'),
      ),
    ), { label: 'Co-host invitation', onClose: () => { this.prompt = null; this.declineInvitation(); } });
  }

  closePrompt() {
    if (this.prompt) this.prompt();
    this.prompt = null;
  }

  declineInvitation() {
    this.socket.call('Live.cohost.reject', { room_id: this.roomId }).catch(() => {});
  }

  async acceptInvitation() {
    let r;
    try {
      r = await this.socket.call('Live.cohost.accept', { room_id: this.roomId });
    } catch (e) {
      toast(e.errno === Errno.NO_COHOST ? 'The invitation has ended.' : e.message, 'warn');
      return;
    }
    this.startPublishing(r.data.publish);
  }

  // startPublishing sends this guest's camera to the guest stream.
  async startPublishing(pub) {
    if (this.publishing || !pub || !pub.whip) return;
    const cur = { stream: null, session: null };
    this.publishing = cur;
    try {
      cur.stream = await openCamera();
    } catch (e) {
      if (this.publishing !== cur) return;
      this.publishing = null;
      toast(cameraError(e), 'error');
      this.end();
      return;
    }
    if (this.publishing !== cur) {
      stopTracks(cur.stream);
      return;
    }
    this.drawTile();
    try {
      const s = await publishWHIP(pub.whip, cur.stream, (state) => {
        if (state === 'failed' && this.publishing === cur) {
          toast('Your co-host connection was lost.', 'error');
          this.end();
        }
      });
      if (this.publishing !== cur) s.close();
      else cur.session = s;
    } catch (e) {
      if (this.publishing !== cur) return;
      toast(`The server did not take your camera: ${e.message}`, 'error');
      this.end();
    }
  }

  stopPublishing() {
    const cur = this.publishing;
    this.publishing = null;
    if (!cur) return;
    if (cur.session) cur.session.close();
    stopTracks(cur.stream);
  }

  // end ends the co-host session (the host's "End co-host", the guest's
  // "Leave"); the room's "off" event takes the tile away.
  end() {
    const guest = this.session && this.session.user.id === this.me.id;
    if (guest || (this.publishing && !this.session)) this.stopPublishing();
    this.socket.call('Live.cohost.end', { room_id: this.roomId }).catch((e) => {
      if (e.errno !== Errno.NO_COHOST) toast(e.message, 'error');
    });
  }

  // onRoomEvent takes a "cohost" room event.
  onRoomEvent(ev) {
    if (!ev.user) return;
    const mine = ev.user.id === this.me.id;
    switch (ev.state) {
      case 'on':
      case 'live':
        this.session = { user: ev.user, play: ev.play || (this.session && this.session.play), live: ev.state === 'live' };
        this.requests.delete(ev.user.id);
        this.invited.delete(ev.user.id);
        if (ev.state === 'on' && !mine) toast(`${nickname(ev.user)} is joining as co-host.`);
        break;
      case 'off': {
        const was = this.session;
        this.session = null;
        if (mine) this.stopPublishing();
        if (was) toast(offMessage(ev, mine));
        break;
      }
      default:
        return;
    }
    this.drawTile();
    this.draw();
  }

  // sync takes Live.room.join's cohosts: the state after (re)joining.
  sync(cohosts) {
    const c = (cohosts || [])[0];
    this.session = c ? { user: c.user, play: c.play, live: !!c.live } : null;
    if (this.publishing && (!c || c.user.id !== this.me.id)) this.stopPublishing();
    this.drawTile();
    this.draw();
  }

  // modeChanged plays the guest again the way the room now plays.
  modeChanged() {
    if (this.tile && this.tile.player) {
      this.tile.key = '';
      this.drawTile();
    }
  }

  // drawTile shows the guest beside the host, or takes the tile away.
  drawTile() {
    const s = this.session;
    if (!s) {
      this.removeTile();
      return;
    }
    const mine = s.user.id === this.me.id;
    if (!this.tile || this.tile.user !== s.user.id) {
      this.removeTile();
      const video = h('video', { id: 'cohost-video', class: 'cohost-video', playsinline: true, autoplay: true });
      const status = h('p', { class: 'cohost-status', id: 'cohost-status' });
      const button = mine
        ? h('button', { class: 'btn small btn-hangup', type: 'button', id: 'cohost-leave', onclick: () => this.end() }, 'Leave')
        : this.isHost ? h('button', { class: 'btn small btn-hangup', type: 'button', id: 'cohost-end', onclick: () => this.end() }, 'End co-host') : null;
      const el = h('div', { class: 'cohost-tile', id: 'cohost-tile', dataset: { userId: s.user.id } },
        video,
        status,
        h('div', { class: 'cohost-bar' }, h('span', { class: 'pill cohost-name' }, avatar(s.user, 'sm'), nickname(s.user), h('span', { class: 'badge badge-host' }, 'co-host')), button),
      );
      this.tile = { el, video, status, user: s.user.id, key: '', player: null, retries: 0 };
      const t = this.tile;
      // Played without sound (the browser's autoplay rule): a tap unmutes.
      el.addEventListener('click', (e) => {
        if (e.target.closest('button') || !t.player || !t.video.muted) return;
        t.player.unmute();
      });
      // Right after the host's video: the stage's bars and buttons stay above it.
      const main = this.stage.querySelector('video');
      if (main) main.after(el);
      else this.stage.append(el);
      this.stage.classList.add('cohosting');
    }
    const t = this.tile;
    t.el.dataset.state = s.live ? 'live' : 'on';
    if (mine) {
      // The guest sees its own camera, mirrored, not the server's copy.
      const stream = this.publishing && this.publishing.stream;
      t.el.dataset.source = 'local';
      t.video.muted = true;
      t.video.classList.add('mirror');
      if (stream && t.video.srcObject !== stream) {
        t.video.srcObject = stream;
        t.video.play().catch(() => {});
      }
      t.status.textContent = s.live ? '' : 'Going on…';
      return;
    }
    if (!s.live || !s.play) {
      t.status.textContent = `${nickname(s.user)} is joining…`;
      return;
    }
    const key = s.play.stream + '|' + this.mode();
    if (t.key === key) return;
    t.key = key;
    this.playGuest(t, s.play);
  }

  // playGuest plays the guest stream as the room plays: WebRTC first
  // (falling back to HTTP-FLV with the server's reason), else HTTP-FLV.
  playGuest(t, play) {
    if (!t.player) {
      t.player = new LivePlayer(t.video, (state, detail) => {
        if (this.tile !== t) return;
        if (state === 'playing' || state === 'muted') {
          t.retries = 0;
          t.status.textContent = state === 'muted' ? 'Tap for sound' : '';
          t.el.dataset.playing = '1';
        } else if (state === 'webrtc-failed') {
          t.el.dataset.source = 'flv';
          t.el.dataset.note = detail || '';
          t.player.play(play.flv);
        } else if (state === 'lost') {
          t.el.dataset.playing = '';
          t.status.textContent = 'Reconnecting…';
          if (t.retries++ < MAX_RETRIES) {
            clearTimeout(t.timer);
            t.timer = setTimeout(() => {
              if (this.tile === t && this.session && this.session.live) {
                t.key = '';
                this.drawTile();
              }
            }, RETRY_LOST);
          }
        } else if (state === 'unsupported') {
          t.status.textContent = "This browser cannot play the co-host's video.";
        }
      });
    }
    t.status.textContent = 'Connecting…';
    t.el.dataset.playing = '';
    if (this.mode() === 'webrtc' && play.whep && canWebRTC()) {
      t.el.dataset.source = 'whep';
      t.player.playWHEP(play.whep);
    } else {
      t.el.dataset.source = 'flv';
      t.player.play(play.flv);
    }
  }

  removeTile() {
    const t = this.tile;
    this.tile = null;
    if (!t) return;
    clearTimeout(t.timer);
    if (t.player) t.player.destroy();
    t.video.srcObject = null;
    t.el.remove();
    this.stage.classList.remove('cohosting');
  }

  // destroy: the page is left (the socket's closing ends a guest's
  // session on the server).
  destroy() {
    this.closePrompt();
    this.stopPublishing();
    this.removeTile();
  }
}

function stopTracks(stream) {
  if (stream) stream.getTracks().forEach((t) => t.stop());
}

// offerError says why an invitation or request failed.
function offerError(e, who) {
  switch (e.errno) {
    case Errno.COHOST_ON:
      return 'The room already has a co-host.';
    case Errno.NOT_IN_ROOM:
      return `${who[0].toUpperCase()}${who.slice(1)} is not in the room.`;
    case Errno.SLOW_DOWN:
      return 'Too many invitations and requests: wait a few seconds.';
    default:
      return e.message;
  }
}

// offMessage says why the co-host session ended.
function offMessage(ev, mine) {
  const name = nickname(ev.user);
  if (mine) return ev.reason === 'ended' ? 'You are no longer co-hosting.' : ev.reason === 'stopped' ? 'Your co-host video stopped: you are off.' : 'You left: co-hosting ended.';
  if (ev.reason === 'left') return `${name} left: co-hosting ended.`;
  if (ev.reason === 'stopped') return `${name}'s video stopped: co-hosting ended.`;
  return `${name} is no longer co-hosting.`;
}
