// Tests of src/webrtc.js's plain parts (the latency estimate, the reasons
// shown for a WHEP failure, H.264 first in the codec order), run by
// `node webrtc_test.mjs` and by go test (pages_test.go).
import assert from 'node:assert/strict';
import { HTTPError, latency, preferH264, whepReason } from './src/webrtc.js';

// latency: jitter buffer per frame + decode per frame + half the RTT.
const stats = (reports) => ({ getStats: async () => new Map(reports.map((r, i) => [String(i), r])) });
assert.equal(await latency(stats([])), null, 'no video yet');
assert.equal(await latency(stats([{ type: 'inbound-rtp', kind: 'video', jitterBufferEmittedCount: 0, jitterBufferDelay: 0 }])), null, 'no frame out yet');
const got = await latency(stats([
  { type: 'inbound-rtp', kind: 'audio', jitterBufferDelay: 100, jitterBufferEmittedCount: 1 },
  { type: 'inbound-rtp', kind: 'video', jitterBufferDelay: 12, jitterBufferEmittedCount: 200, framesDecoded: 200, totalDecodeTime: 1 },
  { type: 'candidate-pair', nominated: false, state: 'succeeded', currentRoundTripTime: 9 },
  { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.04 },
]));
assert.ok(Math.abs(got - (0.06 + 0.005 + 0.02)) < 1e-9, `latency ${got}`);

// whepReason: one line for people; a 409's body (the OBS fix) as it is.
const bf = "the stream's video has B-frames, which WebRTC cannot play; in OBS set bframes=0";
assert.equal(whepReason(new HTTPError(409, bf)), bf);
assert.equal(whepReason(new HTTPError(404, 'not live')), 'WebRTC is not available for this room right now.');
assert.equal(whepReason(new HTTPError(403, 'the sign has expired')), 'The server refused WebRTC: the sign has expired');
assert.equal(whepReason(new HTTPError(503, '')), 'WebRTC failed (503): HTTP 503');
assert.equal(whepReason(new TypeError('Failed to fetch')), 'Failed to fetch');

// preferH264: H.264 packetization-mode 1 constrained baseline first, the
// rest kept; nothing changes when the browser has no H.264.
const codecs = [
  { mimeType: 'video/VP8' },
  { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f' },
  { mimeType: 'video/rtx' },
  { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' },
  { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f' },
];
globalThis.RTCRtpSender = { getCapabilities: () => ({ codecs }) };
globalThis.RTCRtpReceiver = { getCapabilities: () => ({ codecs: codecs.filter((c) => c.mimeType !== 'video/H264') }) };
let set = null;
preferH264({ setCodecPreferences: (c) => { set = c; } }, 'send');
assert.deepEqual(set.map((c) => c.sdpFmtpLine || c.mimeType), [
  'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f',
  'level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'video/VP8', 'video/rtx',
]);
set = null;
preferH264({ setCodecPreferences: (c) => { set = c; } }, 'recv');
assert.equal(set, null, 'no H.264: the browser order');
preferH264({}, 'send'); // no setCodecPreferences: nothing to do

console.log('webrtc_test.mjs: ok');
