// WebRTC with the server's WHIP (publish) and WHEP (play) endpoints
// (README, "WebRTC: WHIP and WHEP"): an SDP offer POSTed as
// application/sdp, answered 201 with the SDP answer and the session's
// Location, which a DELETE ends. The offer carries all its ICE candidates
// (the server takes trickle too, but one round trip is simpler): the page
// waits for ICE gathering to complete, or at most 2 s.

import { t } from './i18n/index.js';

const ICE_GATHER_WAIT = 2000; // ms at most before the offer goes anyway

// canWebRTC reports whether the browser has RTCPeerConnection.
export function canWebRTC() {
  return typeof window.RTCPeerConnection === 'function';
}

// HTTPError is a WHIP or WHEP request the server refused: status is the
// HTTP status, message the server's body (it says why, e.g. the OBS fix
// for B-frames on 409).
export class HTTPError extends Error {
  constructor(status, body) {
    super(body || `HTTP ${status}`);
    this.status = status;
  }
}

// waitGathering resolves once the connection's ICE gathering is complete,
// or after ms.
function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// preferH264 puts H.264 first among the transceiver's codecs where the
// browser can send or receive it (packetization-mode 1 and constrained
// baseline first), so that the server need not refuse VP8 or VP9.
export function preferH264(transceiver, kind) {
  const caps = (kind === 'send' ? RTCRtpSender : RTCRtpReceiver).getCapabilities?.('video');
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const score = (c) => {
    if (c.mimeType.toLowerCase() !== 'video/h264') return 0;
    const f = c.sdpFmtpLine || '';
    return 1 + (f.includes('packetization-mode=1') ? 2 : 0) + (f.includes('profile-level-id=42e01f') ? 1 : 0);
  };
  const codecs = [...caps.codecs].sort((a, b) => score(b) - score(a));
  if (!codecs.length || score(codecs[0]) === 0) return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch {
    // The browser's own order then.
  }
}

// negotiate makes the offer, POSTs it to url and applies the answer. It
// returns the session's URL (the Location, absolute).
async function negotiate(pc, url, signal) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc, ICE_GATHER_WAIT);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
    signal,
    cache: 'no-store',
  });
  const body = await res.text();
  if (res.status !== 201) throw new HTTPError(res.status, body.trim());
  const loc = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return loc ? new URL(loc, url).href : '';
}

// endSession DELETEs a WHIP or WHEP session's URL; failures are ignored
// (the server ends a session whose peer went away by itself).
function endSession(location) {
  if (!location) return;
  fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
}

// Session is one WHIP or WHEP session: its RTCPeerConnection and URL.
export class Session {
  constructor(pc) {
    this.pc = pc;
    this.location = '';
    this.closed = false;
    this.abort = new AbortController();
  }

  // close ends the session on the server and here.
  close() {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    endSession(this.location);
    this.pc.close();
  }
}

// publishWHIP sends stream's tracks to the WHIP URL (publish.whip of
// Live.stream). It resolves to the Session once the answer is applied;
// onState gets the connection's states ('connected', 'failed', ...).
export async function publishWHIP(url, stream, onState) {
  const pc = new RTCPeerConnection();
  const s = new Session(pc);
  pc.addEventListener('connectionstatechange', () => onState && onState(pc.connectionState));
  try {
    for (const track of stream.getTracks()) {
      // A live stream keeps its resolution when the encoder is short of
      // CPU or bandwidth (it drops frames instead): the FLV and HLS
      // viewers of a WHIP stream cannot follow a change mid-stream
      // (mpegts.js's MSE buffer fails on a new AVC configuration).
      if (track.kind === 'video') track.contentHint = 'detail';
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'video') preferH264(tr, 'send');
    }
    s.location = await negotiate(pc, url, s.abort.signal);
    for (const tr of pc.getTransceivers?.() ?? []) {
      if (tr.sender?.track?.kind !== 'video' || !tr.sender.getParameters) continue;
      try {
        const p = tr.sender.getParameters();
        p.degradationPreference = 'maintain-resolution';
        tr.sender.setParameters(p).catch(() => {}); // contentHint above does the same
      } catch {
        // Older browsers: contentHint above does the same.
      }
    }
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}

// playWHEP asks the WHEP URL (play.whep of Live.stream.read) for the
// room's video and audio. onTrack gets the remote MediaStream.
export async function playWHEP(url, onTrack, onState) {
  const pc = new RTCPeerConnection();
  const s = new Session(pc);
  const remote = new MediaStream();
  pc.addEventListener('track', (e) => {
    remote.addTrack(e.track);
    onTrack(remote);
  });
  pc.addEventListener('connectionstatechange', () => onState && onState(pc.connectionState));
  try {
    preferH264(pc.addTransceiver('video', { direction: 'recvonly' }), 'recv');
    pc.addTransceiver('audio', { direction: 'recvonly' });
    s.location = await negotiate(pc, url, s.abort.signal);
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}

// latency estimates, in seconds, how far behind the server a WHEP viewer
// is: the video's jitter buffer delay (jitterBufferDelay /
// jitterBufferEmittedCount), its decode time per frame, and half the
// round trip to the server. It leaves out the publisher's side and the
// screen: an approximation.
export async function latency(pc) {
  const stats = await pc.getStats();
  let jitter = null;
  let rtt = 0;
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && r.jitterBufferEmittedCount > 0) {
      jitter = r.jitterBufferDelay / r.jitterBufferEmittedCount;
      if (r.framesDecoded > 0 && typeof r.totalDecodeTime === 'number') jitter += r.totalDecodeTime / r.framesDecoded;
    }
    if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && typeof r.currentRoundTripTime === 'number') {
      rtt = r.currentRoundTripTime;
    }
  });
  return jitter === null ? null : jitter + rtt / 2;
}

// whepReason says, in one line for people, why WebRTC playback failed.
export function whepReason(e) {
  if (e instanceof HTTPError) {
    if (e.status === 409) return e.message; // B-frames: the body names the OBS fix
    if (e.status === 404) return t('webrtc.n404');
    if (e.status === 403) return t('webrtc.n403', { why: e.message });
    return t('webrtc.failedN', { status: e.status, why: e.message });
  }
  return (e && e.message) || t('webrtc.failed');
}
