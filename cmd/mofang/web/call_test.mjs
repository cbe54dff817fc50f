// Tests of src/call.js (a call's media) with a fake RTCPeerConnection and
// fetch: the caller offers and the callee answers, ICE candidates that
// come before the remote description wait for it, the offerer ignores
// offers, the relay is asked once and taken once (WHIP out, WHEP in, the
// WHEP tried again until the other party publishes), and nothing happens
// after close. Run by `node call_test.mjs` and by go test (pages_test.go).
import assert from 'node:assert/strict';

// The fakes.
const pcs = [];
class FakePC {
  constructor(config) {
    this.config = config;
    this.listeners = {};
    this.senders = [];
    this.transceivers = [];
    this.localDescription = null;
    this.remoteDescription = null;
    this.signalingState = 'stable';
    this.connectionState = 'new';
    this.iceGatheringState = 'complete';
    this.candidates = [];
    this.closed = false;
    pcs.push(this);
  }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  removeEventListener() {}
  emit(type, ev) { for (const fn of this.listeners[type] || []) fn(ev); }
  getSenders() { return this.senders; }
  addTrack(track) { this.senders.push({ track }); }
  addTransceiver(trackOrKind, init) { const t = { trackOrKind, init }; this.transceivers.push(t); return t; }
  async createOffer() { return { type: 'offer', sdp: 'offer-sdp' }; }
  async createAnswer() { return { type: 'answer', sdp: 'answer-sdp' }; }
  async setLocalDescription(d) {
    this.localDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-local-offer' : 'stable';
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-remote-offer' : 'stable';
  }
  async addIceCandidate(c) {
    if (!this.remoteDescription) throw new Error('no remote description');
    this.candidates.push(c);
  }
  setState(s) { this.connectionState = s; this.emit('connectionstatechange', {}); }
  close() { this.closed = true; }
}
class FakeStream {
  constructor(tracks = []) { this.tracks = tracks; }
  addTrack(t) { this.tracks.push(t); }
  getTracks() { return this.tracks; }
}
globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = FakeStream;
globalThis.RTCRtpSender = { getCapabilities: () => null };
globalThis.RTCRtpReceiver = { getCapabilities: () => null };

// fetch answers WHIP and WHEP offers: 404 for the first `missing` WHEP
// offers (the other party has not published yet), then 201.
const requests = [];
let missing = 0;
globalThis.fetch = async (url, opts = {}) => {
  requests.push({ url: String(url), method: opts.method || 'GET' });
  const whep = String(url).includes('/whep');
  if (opts.method === 'POST' && whep && missing > 0) {
    missing--;
    return { status: 404, text: async () => 'stream not found', headers: { get: () => null } };
  }
  return { status: 201, text: async () => 'answer-sdp', headers: { get: (h) => (h === 'Location' ? '/session/1' : null) } };
};
globalThis.location = { href: 'http://127.0.0.1/' };

const { CallMedia } = await import('./src/call.js');

const tick = () => new Promise((r) => setTimeout(r, 0));
const settle = async () => { for (let i = 0; i < 10; i++) await tick(); };
const camera = () => new FakeStream([{ kind: 'video' }, { kind: 'audio' }]);

function party(offerer, extra = {}) {
  const sent = [];
  const routes = [];
  const remotes = [];
  let asked = 0;
  const m = new CallMedia({
    offerer,
    iceServers: [{ urls: ['stun:stun.example.org'] }],
    local: camera(),
    send: (d) => sent.push(d),
    askRelay: async () => {
      asked++;
      return { publish: { whip: 'http://127.0.0.1/live/call-a/whip?sign=x' }, play: { whep: 'http://127.0.0.1/live/call-b/whep?sign=y' } };
    },
    onRemote: (s) => remotes.push(s),
    onRoute: (route, state, detail) => routes.push(`${route} ${state}${detail ? ': ' + detail : ''}`),
    directWait: 60000,
    ...extra,
  });
  return { m, sent, routes, remotes, asked: () => asked };
}

// The caller offers with its tracks; a candidate before the answer waits
// for it; an offer from the callee is ignored.
{
  pcs.length = 0;
  const a = party(true);
  a.m.start();
  await settle();
  const pc = pcs[0];
  assert.deepEqual(pc.config, { iceServers: [{ urls: ['stun:stun.example.org'] }] });
  assert.equal(pc.senders.length, 2, 'camera and microphone sent');
  assert.deepEqual(a.sent, [{ sdp: { type: 'offer', sdp: 'offer-sdp' } }]);
  pc.emit('icecandidate', { candidate: { toJSON: () => ({ candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0' }) } });
  pc.emit('icecandidate', { candidate: null }); // end of candidates: not sent
  assert.equal(a.sent.length, 2);
  assert.equal(a.sent[1].candidate.sdpMid, '0');
  a.m.handle({ candidate: { candidate: 'candidate:2', sdpMid: '0' } });
  a.m.handle({ sdp: { type: 'offer', sdp: 'glare' } });
  await settle();
  assert.equal(pc.candidates.length, 0, 'no candidate before the answer');
  a.m.handle({ sdp: { type: 'answer', sdp: 'answer-sdp' } });
  await settle();
  assert.equal(pc.remoteDescription.sdp, 'answer-sdp');
  assert.deepEqual(pc.candidates, [{ candidate: 'candidate:2', sdpMid: '0' }]);
  a.m.handle({ sdp: { type: 'answer', sdp: 'again' } }); // not in have-local-offer: ignored
  a.m.handle('garbage');
  a.m.handle({ sdp: { type: 'answer', sdp: 7 } });
  await settle();
  assert.equal(pc.remoteDescription.sdp, 'answer-sdp');
  pc.emit('track', { track: { kind: 'video' } });
  assert.equal(a.remotes.length, 1);
  pc.setState('connected');
  assert.deepEqual(a.routes, ['direct connecting', 'direct connected']);
  a.m.close();
  assert.ok(pc.closed);
  a.m.handle({ candidate: { candidate: 'candidate:3' } });
  await settle();
  assert.equal(pc.candidates.length, 1, 'nothing after close');
}

// The callee waits for the offer (candidates before it wait too), then
// answers with its tracks.
{
  pcs.length = 0;
  const b = party(false);
  b.m.start();
  await settle();
  const pc = pcs[0];
  assert.equal(b.sent.length, 0, 'the callee does not offer');
  b.m.handle({ candidate: { candidate: 'candidate:1' } });
  b.m.handle({ sdp: { type: 'offer', sdp: 'offer-sdp' } });
  b.m.handle({ candidate: { candidate: 'candidate:2' } });
  await settle();
  assert.equal(pc.remoteDescription.sdp, 'offer-sdp');
  assert.equal(pc.senders.length, 2);
  assert.deepEqual(b.sent, [{ sdp: { type: 'answer', sdp: 'answer-sdp' } }]);
  assert.deepEqual(pc.candidates.map((c) => c.candidate), ['candidate:1', 'candidate:2']);
  b.m.close();
}

// No direct connection in time: the relay is asked once, the direct
// connection closes, the camera goes out over WHIP and the other party
// is played over WHEP, tried again while it is not published; the other
// party's share that follows is ignored.
{
  pcs.length = 0;
  requests.length = 0;
  missing = 1;
  const a = party(true, { directWait: 20 });
  a.m.start();
  await new Promise((r) => setTimeout(r, 60));
  a.m.relay('again'); // while asking: once
  await settle();
  assert.equal(a.asked(), 1);
  assert.ok(pcs[0].closed, 'the direct connection closed');
  assert.equal(a.routes[1], 'relay connecting: No direct connection within 0 s.');
  a.m.useRelay({ publish: { whip: 'http://127.0.0.1/other/whip' }, play: { whep: 'http://127.0.0.1/other/whep' } });
  a.m.handle({ sdp: { type: 'answer', sdp: 'late' } });
  await settle();
  assert.equal(pcs[0].remoteDescription, null, 'no direct signal applies once relayed');
  const posts = () => requests.filter((r) => r.method === 'POST').map((r) => r.url);
  assert.deepEqual(posts(), ['http://127.0.0.1/live/call-a/whip?sign=x', 'http://127.0.0.1/live/call-b/whep?sign=y']);
  await new Promise((r) => setTimeout(r, 600)); // RELAY_RETRY
  await settle();
  assert.deepEqual(posts().slice(2), ['http://127.0.0.1/live/call-b/whep?sign=y'], 'WHEP tried again after the 404');
  const whep = pcs[pcs.length - 1];
  assert.equal(whep.transceivers.length, 2, 'WHEP receives video and audio');
  whep.emit('track', { track: { kind: 'video' } });
  assert.equal(a.remotes.length, 1);
  whep.setState('connected');
  assert.equal(a.routes[a.routes.length - 1], 'relay connected');
  a.m.relay('once more');
  await settle();
  assert.equal(a.asked(), 1, 'relayed already');
  a.m.close();
  await settle();
  const deletes = requests.filter((r) => r.method === 'DELETE').map((r) => r.url);
  assert.equal(deletes.length, 2, `both relay sessions ended: ${deletes}`);
}

// ICE gathering done without a single candidate of this side (nothing
// it may use directly, no TURN): the relay at once; with candidates, not.
{
  pcs.length = 0;
  const a = party(true);
  a.m.start();
  await settle();
  pcs[0].emit('icecandidate', { candidate: { toJSON: () => ({ candidate: 'candidate:1' }) } });
  pcs[0].iceGatheringState = 'complete';
  pcs[0].emit('icegatheringstatechange', {});
  await settle();
  assert.equal(a.asked(), 0, 'a candidate: ICE decides');
  a.m.close();
  pcs.length = 0;
  const b = party(false);
  b.m.start();
  pcs[0].iceGatheringState = 'complete';
  pcs[0].emit('icegatheringstatechange', {});
  await settle();
  assert.equal(b.asked(), 1);
  assert.equal(b.routes[1], 'relay connecting: No direct network path.');
  b.m.close();
}

// A failed direct connection asks for the relay at once.
{
  pcs.length = 0;
  const a = party(true);
  a.m.start();
  await settle();
  pcs[0].setState('failed');
  await settle();
  assert.equal(a.asked(), 1);
  assert.equal(a.routes[1], 'relay connecting: The direct connection failed.');
  a.m.close();
}

console.log('call_test.mjs: ok');
