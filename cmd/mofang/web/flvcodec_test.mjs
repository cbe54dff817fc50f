// Tests of src/flvcodec.js, run by `node flvcodec_test.mjs` (and by go
// test: pages_test.go), on FLV starts made here and cut at every byte.
import assert from 'node:assert/strict';
import { flvVideoCodec } from './src/flvcodec.js';

const header = (flags) => [0x46, 0x4c, 0x56, 1, flags, 0, 0, 0, 9, 0, 0, 0, 0];
const tag = (type, data) => {
  const n = data.length;
  return [type, (n >> 16) & 255, (n >> 8) & 255, n & 255, 0, 0, 0, 0, 0, 0, 0, ...data, 0, 0, (n + 11) >> 8, (n + 11) & 255];
};
const script = tag(18, [2, 0, 10, ...Buffer.from('onMetaData'), 8, 0, 0, 0, 0, 0, 0, 9]);
const aac = tag(8, [0xaf, 0, 0x12, 0x10]);
const avcSeq = tag(9, [0x17, 0, 0, 0, 0, 1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f]);
const hevcRecord = [1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0];
const hevcLegacy = tag(9, [0x1c, 0, 0, 0, 0, ...hevcRecord]);
const hevcEnhanced = tag(9, [0x90, ...Buffer.from('hvc1'), ...hevcRecord]);
const rext = hevcRecord.slice();
rext[1] = 0x04;
rext[12] = 63;
const hevcRext = tag(9, [0x90, ...Buffer.from('hvc1'), ...rext]);
const frame = tag(9, [0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]);

const cases = [
  ['H.264', [...header(5), ...script, ...aac, ...avcSeq], 'avc1.64001f'],
  ['H.265, codec id 12', [...header(5), ...hevcLegacy], 'hvc1.1.1.L93.B0'],
  ['H.265, Enhanced RTMP', [...header(5), ...script, ...aac, ...hevcEnhanced], 'hvc1.1.1.L93.B0'],
  ['H.265 RExt', [...header(5), ...hevcRext, ...aac], 'hvc1.4.1.L63.B0'],
  ['a frame before the header', [...header(5), ...frame, ...avcSeq], 'avc1.64001f'],
  ['AV1', [...header(1), ...tag(9, [0x90, ...Buffer.from('av01'), 0x81, 0, 0, 0])], 'av01.0.01M.08'],
  ['no video by the header', [...header(4), ...aac], ''],
  ['audio only', [...header(5), ...Array(70).fill(aac).flat()], ''],
  ['not FLV', [...Buffer.from('<html><body>'), 0, 0, 0], ''],
];
for (const [name, bytes, want] of cases) {
  const b = Uint8Array.from(bytes);
  assert.equal(flvVideoCodec(b), want, name);
  // Cut anywhere, it asks for more or gives the same answer.
  for (let i = 0; i < b.length; i++) {
    const got = flvVideoCodec(b.subarray(0, i));
    assert.ok(got === null || got === want, `${name} cut at ${i}: ${got}`);
  }
}
// Garbage never throws.
let seed = 1;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 255;
for (let n = 0; n < 2000; n++) {
  const b = Uint8Array.from([...header(5), ...Array.from({ length: rnd() }, rnd)]);
  const got = flvVideoCodec(b);
  assert.ok(got === null || typeof got === 'string');
}
console.log(`flvcodec: ${cases.length} cases ok`);
