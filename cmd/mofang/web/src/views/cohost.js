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
import { t } from '../i18n/index.js';

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
      'aria-label': t('cohost.invite', { name }), title: waiting ? t('cohost.invited', { name }) : t('cohost.invite', { name }),
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
          h('span', { class: 'grow' }, h('b', {}, name), ' ', t('cohost.asks')),
          h('button', { class: 'btn small btn-ghost cohost-decline', type: 'button', onclick: () => this.answer(u, false) }, t('cohost.decline')),
          h('button', { class: 'btn small btn-primary cohost-accept', type: 'button', disabled: !!this.session, onclick: () => this.answer(u, true) }, t('cohost.accept')),
        ));
      }
      this.box.replaceChildren(...(items.length ? [h('ul', { class: 'cohost-requests', id: 'cohost-requests' }, ...items)] : []));
    } else if (this.enabled && this.host() && canCall() && !this.session && (this.asked || this.hostOnline())) {
      this.box.replaceChildren(this.asked
        ? h('div', { class: 'row' },
          h('span', { class: 'muted small grow', id: 'cohost-waiting' }, t('cohost.waiting')),
          h('button', { class: 'btn small btn-ghost', type: 'button', id: 'cohost-cancel', onclick: () => this.withdraw() }, t('cohost.cancel')))
        : h('button', { class: 'btn small btn-ghost', type: 'button', id: 'cohost-request', onclick: () => this.request() }, icon('users'), t('cohost.request')));
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
      toast(t('cohost.askedHost'), 'ok');
    } catch (e) {
      this.asked = false;
      this.draw();
      toast(offerError(e, ''), 'warn');
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
      toast(t('cohost.invitedToast', { name: nickname(user) }), 'ok');
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
      toast(e.errno === Errno.NO_COHOST ? t('cohost.noLonger', { name: nickname(user) }) : e.message, 'warn');
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
        toast(t('cohost.asksToast', { name }));
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
          toast(t('cohost.declined', { name }), 'warn');
        } else if (this.asked) {
          this.asked = false;
          this.draw();
          toast(t('cohost.hostDeclined'), 'warn');
        }
        break;
      case 'cancel':
        if (this.isHost) {
          this.requests.delete(id);
          this.draw();
        } else {
          this.closePrompt();
          toast(t('cohost.withdrew'));
        }
        break;
      case 'timeout':
        if (this.isHost) {
          this.requests.delete(id);
          this.invited.delete(id);
          this.draw();
        } else {
          if (this.asked) toast(t('cohost.noAnswer'), 'warn');
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
      h('h2', {}, t('cohost.invites', { name })),
      h('p', { class: 'muted' }, t('cohost.everyone')),
      h('div', { class: 'row end' },
        h('button', { class: 'btn btn-danger', type: 'button', id: 'cohost-invite-reject', onclick: () => { close(); this.prompt = null; this.declineInvitation(); } }, t('cohost.decline')),
        h('button', { class: 'btn btn-accept', type: 'button', id: 'cohost-invite-accept', onclick: () => { close(); this.prompt = null; this.acceptInvitation(); } }, t('cohost.goOn')),
      ),
    ), { label: t('cohost.invitation'), onClose: () => { this.prompt = null; this.declineInvitation(); } });
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
      toast(e.errno === Errno.NO_COHOST ? t('cohost.invEnded') : e.message, 'warn');
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
          toast(t('cohost.lost'), 'error');
          this.end();
        }
      });
      if (this.publishing !== cur) s.close();
      else cur.session = s;
    } catch (e) {
      if (this.publishing !== cur) return;
      toast(t('cohost.camRefused', { why: e.message }), 'error');
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
        if (ev.state === 'on' && !mine) toast(t('cohost.joining', { name: nickname(ev.user) }));
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
        ? h('button', { class: 'btn small btn-hangup', type: 'button', id: 'cohost-leave', onclick: () => this.end() }, t('cohost.leave'))
        : this.isHost ? h('button', { class: 'btn small btn-hangup', type: 'button', id: 'cohost-end', onclick: () => this.end() }, t('cohost.end')) : null;
      const el = h('div', { class: 'cohost-tile', id: 'cohost-tile', dataset: { userId: s.user.id } },
        video,
        status,
        h('div', { class: 'cohost-bar' }, h('span', { class: 'pill cohost-name' }, avatar(s.user, 'sm'), nickname(s.user), h('span', { class: 'badge badge-host' }, t('cohost.badge'))), button),
      );
      this.tile = { el, video, status, user: s.user.id, key: '', player: null, retries: 0 };
      const tile = this.tile;
      // Played without sound (the browser's autoplay rule): a tap unmutes.
      el.addEventListener('click', (e) => {
        if (e.target.closest('button') || !tile.player || !tile.video.muted) return;
        tile.player.unmute();
      });
      // Right after the host's video: the stage's bars and buttons stay above it.
      const main = this.stage.querySelector('video');
      if (main) main.after(el);
      else this.stage.append(el);
      this.stage.classList.add('cohosting');
    }
    const tile = this.tile;
    tile.el.dataset.state = s.live ? 'live' : 'on';
    if (mine) {
      // The guest sees its own camera, mirrored, not the server's copy.
      const stream = this.publishing && this.publishing.stream;
      tile.el.dataset.source = 'local';
      tile.video.muted = true;
      tile.video.classList.add('mirror');
      if (stream && tile.video.srcObject !== stream) {
        tile.video.srcObject = stream;
        tile.video.play().catch(() => {});
      }
      tile.status.textContent = s.live ? '' : t('cohost.goingOn');
      return;
    }
    if (!s.live || !s.play) {
      tile.status.textContent = t('cohost.isJoining', { name: nickname(s.user) });
      return;
    }
    const key = s.play.stream + '|' + this.mode();
    if (tile.key === key) return;
    tile.key = key;
    this.playGuest(tile, s.play);
  }

  // playGuest plays the guest stream as the room plays: WebRTC first
  // (falling back to HTTP-FLV with the server's reason), else HTTP-FLV.
  playGuest(tile, play) {
    if (!tile.player) {
      tile.player = new LivePlayer(tile.video, (state, detail) => {
        if (this.tile !== tile) return;
        if (state === 'playing' || state === 'muted') {
          tile.retries = 0;
          tile.status.textContent = state === 'muted' ? t('cohost.tapSound') : '';
          tile.el.dataset.playing = '1';
        } else if (state === 'webrtc-failed') {
          tile.el.dataset.source = 'flv';
          tile.el.dataset.note = detail || '';
          tile.player.play(play.flv);
        } else if (state === 'lost') {
          tile.el.dataset.playing = '';
          tile.status.textContent = t('cohost.reconnecting');
          if (tile.retries++ < MAX_RETRIES) {
            clearTimeout(tile.timer);
            tile.timer = setTimeout(() => {
              if (this.tile === tile && this.session && this.session.live) {
                tile.key = '';
                this.drawTile();
              }
            }, RETRY_LOST);
          }
        } else if (state === 'unsupported') {
          tile.status.textContent = t('cohost.cantPlay');
        }
      });
    }
    tile.status.textContent = t('cohost.connecting');
    tile.el.dataset.playing = '';
    if (this.mode() === 'webrtc' && play.whep && canWebRTC()) {
      tile.el.dataset.source = 'whep';
      tile.player.playWHEP(play.whep);
    } else {
      tile.el.dataset.source = 'flv';
      tile.player.play(play.flv);
    }
  }

  removeTile() {
    const tile = this.tile;
    this.tile = null;
    if (!tile) return;
    clearTimeout(tile.timer);
    if (tile.player) tile.player.destroy();
    tile.video.srcObject = null;
    tile.el.remove();
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
  if (stream) stream.getTracks().forEach((tr) => tr.stop());
}

// offerError says why an invitation or request failed.
function offerError(e, who) {
  switch (e.errno) {
    case Errno.COHOST_ON:
      return t('cohost.hasCohost');
    case Errno.NOT_IN_ROOM:
      return who ? t('cohost.whoNotInRoom', { who }) : t('cohost.hostNotInRoom');
    case Errno.SLOW_DOWN:
      return t('cohost.tooMany');
    default:
      return e.message;
  }
}

// offMessage says why the co-host session ended.
function offMessage(ev, mine) {
  const name = nickname(ev.user);
  if (mine) return ev.reason === 'ended' ? t('cohost.youNoLonger') : ev.reason === 'stopped' ? t('cohost.youStopped') : t('cohost.youLeft');
  if (ev.reason === 'left') return t('cohost.left', { name });
  if (ev.reason === 'stopped') return t('cohost.stopped', { name });
  return t('cohost.over', { name });
}
