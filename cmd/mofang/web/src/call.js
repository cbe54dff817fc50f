// The media of a 1:1 call (README, "Calls and co-hosts"; seed 004): one
// RTCPeerConnection between the two browsers, whose SDP offer and answer
// and ICE candidates go to the other party through Live.call.signal (the
// room's websocket, to that party only) and come back as "signal" events.
// The caller offers, the callee answers; candidates trickle both ways.
//
// Where the direct connection fails, or does not connect within
// DIRECT_WAIT, or this side has no ICE candidate of its own at all (no
// network it may use directly, no TURN server), or a party asks for it,
// the call goes through the server
// instead (Live.call.relay): each party publishes its camera to its own
// private call stream over WHIP and plays the other party's over WHEP.
// Nothing here touches the DOM: the call's page (views/calls.js) owns the
// video elements.
//
// Signals, as Live.call.signal's data: {sdp: {type: 'offer' | 'answer',
// sdp}} or {candidate: RTCIceCandidateInit}.

import { playWHEP, publishWHIP } from './webrtc.js';
import { t } from './i18n/index.js';

export const DIRECT_WAIT = 10000; // ms for the direct connection before the server relays the call
const RELAY_RETRY = 500; // ms between tries to play the other party's relay stream
const RELAY_TRIES = 40; // ... at most this many (it starts when the other party publishes)
const MAX_QUEUED = 64; // ICE candidates kept before the remote description

export class CallMedia {
  // offerer: this side (the caller) makes the offer. iceServers: the
  // call's, as Live.call.invite or the "invite" event gave them. local:
  // this side's camera and microphone. send(data) passes a signal on
  // (Live.call.signal); askRelay() asks for the server's relay
  // (Live.call.relay) and resolves to this side's share {publish, play}.
  // onRemote(stream) gets the other party's MediaStream (again whenever
  // it changes); onRoute(route, state, detail): route 'direct' or
  // 'relay', state 'connecting', 'connected' or 'failed'.
  constructor({ offerer, iceServers, local, send, askRelay, onRemote, onRoute, directWait = DIRECT_WAIT }) {
    this.offerer = offerer;
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    this.local = local;
    this.send = send;
    this.askRelay = askRelay;
    this.onRemote = onRemote || (() => {});
    this.onRoute = onRoute || (() => {});
    this.directWait = directWait;
    this.pc = null;
    this.remote = null;
    this.queued = [];
    this.chain = Promise.resolve();
    this.route = 'direct';
    this.asking = false;
    this.closed = false;
    this.timer = null;
    this.pub = null; // relay: the WHIP session of this side's camera
    this.sub = null; // relay: the WHEP session of the other party
  }

  // start opens the direct connection: the offerer sends its offer, the
  // answerer waits for it. The relay takes over if it has not connected
  // within directWait.
  start() {
    if (this.closed || this.pc) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.remote = new MediaStream();
    let gathered = 0;
    pc.addEventListener('icecandidate', (e) => {
      if (this.pc !== pc || !e.candidate) return;
      gathered++;
      this.send({ candidate: e.candidate.toJSON() });
    });
    pc.addEventListener('icegatheringstatechange', () => {
      if (this.pc === pc && pc.iceGatheringState === 'complete' && gathered === 0) this.relay(t('call.noPath'));
    });
    pc.addEventListener('track', (e) => {
      if (this.pc !== pc) return;
      this.remote.addTrack(e.track);
      this.onRemote(this.remote);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (this.pc !== pc) return;
      const s = pc.connectionState;
      if (s === 'connected') {
        clearTimeout(this.timer);
        this.onRoute('direct', 'connected');
      } else if (s === 'failed') {
        this.relay(t('call.directFailed'));
      }
    });
    this.onRoute('direct', 'connecting');
    this.timer = setTimeout(() => this.relay(t('call.noDirect', { s: Math.round(this.directWait / 1000) })), this.directWait);
    if (this.offerer) {
      this.addTracks(pc);
      this.chain = this.chain.then(async () => {
        await pc.setLocalDescription(await pc.createOffer());
        if (this.pc === pc) this.send({ sdp: { type: 'offer', sdp: pc.localDescription.sdp } });
      }).catch((e) => this.relay(t('call.noStart', { why: e.message })));
    }
  }

  addTracks(pc) {
    if (pc.getSenders().some((s) => s.track)) return;
    for (const track of this.local.getTracks()) pc.addTrack(track, this.local);
  }

  // handle takes a signal of the other party, in order.
  handle(data) {
    this.chain = this.chain.then(() => this.apply(data)).catch(() => {
      // A signal that does not apply (the call moved on): ICE or the
      // relay's timer decides.
    });
  }

  async apply(data) {
    const pc = this.pc;
    if (this.closed || this.route !== 'direct' || !pc || !data || typeof data !== 'object') return;
    if (data.sdp && typeof data.sdp.sdp === 'string') {
      const d = { type: data.sdp.type, sdp: data.sdp.sdp };
      if (d.type === 'offer' && !this.offerer) {
        await pc.setRemoteDescription(d);
        this.addTracks(pc); // into the transceivers the offer made
        await this.flush(pc);
        await pc.setLocalDescription(await pc.createAnswer());
        if (this.pc === pc) this.send({ sdp: { type: 'answer', sdp: pc.localDescription.sdp } });
      } else if (d.type === 'answer' && this.offerer && pc.signalingState === 'have-local-offer') {
        await pc.setRemoteDescription(d);
        await this.flush(pc);
      }
    } else if (data.candidate && typeof data.candidate === 'object') {
      if (!pc.remoteDescription) {
        if (this.queued.length < MAX_QUEUED) this.queued.push(data.candidate);
        return;
      }
      await pc.addIceCandidate(data.candidate).catch(() => {});
    }
  }

  async flush(pc) {
    const q = this.queued;
    this.queued = [];
    for (const c of q) await pc.addIceCandidate(c).catch(() => {});
  }

  // relay asks the server to relay the call (a party's choice, or the
  // direct connection failed); the other party hears of it and switches
  // too.
  async relay(why) {
    if (this.closed || this.route === 'relay' || this.asking) return;
    this.asking = true;
    clearTimeout(this.timer);
    try {
      const share = await this.askRelay();
      this.useRelay(share, why);
    } catch (e) {
      if (!this.closed && this.route !== 'relay') this.onRoute('direct', 'failed', (e && e.message) || t('call.relayNoStart'));
    } finally {
      this.asking = false;
    }
  }

  // useRelay switches to the server's relay with this side's share
  // ({publish, play} of Live.call.relay or the "relay" event): the
  // direct connection closes, the camera goes to publish.whip and the
  // other party plays from play.whep. A second share is ignored.
  useRelay(share, why) {
    if (this.closed || this.route === 'relay' || !share || !share.publish || !share.play) return;
    this.route = 'relay';
    clearTimeout(this.timer);
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.onRoute('relay', 'connecting', why || '');
    this.publishRelay(share.publish.whip, 0);
    this.playRelay(share.play.whep, 0);
  }

  publishRelay(url, n) {
    if (this.closed) return;
    publishWHIP(url, this.local, (s) => {
      if (s === 'failed' && !this.closed) this.onRoute('relay', 'failed', t('call.serverLost'));
    }).then((session) => {
      if (this.closed) session.close();
      else this.pub = session;
    }, (e) => {
      if (this.closed) return;
      if (n + 1 < 3) setTimeout(() => this.publishRelay(url, n + 1), RELAY_RETRY);
      else this.onRoute('relay', 'failed', t('call.camRefused', { why: e.message }));
    });
  }

  // playRelay plays the other party's call stream; until that party
  // publishes, the server answers 404 (or 503 while it has no picture
  // yet), so it tries again every RELAY_RETRY, RELAY_TRIES times.
  playRelay(url, n) {
    if (this.closed) return;
    let session = null;
    const retry = (why) => {
      if (this.closed) return;
      if (session) {
        session.close();
        if (this.sub === session) this.sub = null;
        session = null;
      }
      if (n + 1 < RELAY_TRIES) setTimeout(() => this.playRelay(url, n + 1), RELAY_RETRY);
      else this.onRoute('relay', 'failed', why);
    };
    playWHEP(url, (stream) => {
      if (!this.closed) this.onRemote(stream);
    }, (s) => {
      if (s === 'connected' && !this.closed) this.onRoute('relay', 'connected');
      if (s === 'failed') retry(t('call.relayFailed'));
    }).then((s) => {
      session = s;
      if (this.closed) s.close();
      else this.sub = s;
    }, (e) => retry(e.message));
  }

  // close ends the call's connections; the camera is the owner's to stop.
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.pub) this.pub.close();
    if (this.sub) this.sub.close();
  }
}

// openCamera asks for the camera and microphone of a call or a co-host,
// at a call's size (the browser may give less).
export function openCamera() {
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
    audio: { echoCancellation: true, noiseSuppression: true },
  });
}

// canCall reports whether this browser can send its camera.
export function canCall() {
  return typeof window.RTCPeerConnection === 'function' && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// cameraError says, for people, why the camera did not start.
export function cameraError(e) {
  if (e && e.name === 'NotAllowedError') return t('call.notAllowed');
  if (e && e.name === 'NotFoundError') return t('call.noCamera');
  return t('call.camFailed', { why: (e && e.message) || e });
}
