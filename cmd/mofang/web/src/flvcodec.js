// flvVideoCodec reads the start of an HTTP-FLV stream (the bytes received
// so far) and returns its video codec as an RFC 6381 string, the form
// MediaSource.isTypeSupported takes ('avc1.64001f', 'hvc1.1.6.L93.B0'):
// from the video sequence header, legacy (AVC, HEVC codec id 12) or
// Enhanced RTMP (FourCC hvc1, av01, vp09). It returns '' for a stream
// without video (no video in its first tags), and null while more bytes
// are needed. No DOM: node tests it (flvcodec_test.mjs).

const MAX_AUDIO_FIRST = 64; // audio tags before the first video tag: audio only

export function flvVideoCodec(b) {
  if (b.length < 9) return null;
  if (b[0] !== 0x46 || b[1] !== 0x4c || b[2] !== 0x56) return ''; // not FLV: let the player say so
  if ((b[4] & 1) === 0) return ''; // the header says: no video
  const headerSize = ((b[5] << 24) | (b[6] << 16) | (b[7] << 8) | b[8]) >>> 0;
  let off = headerSize + 4; // PreviousTagSize0
  let others = 0;
  for (;;) {
    if (off + 11 > b.length) return null;
    const type = b[off] & 0x1f;
    const size = (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
    const data = off + 11;
    if (type === 9) {
      if (b.length < data + Math.min(size, 32)) return null; // enough for a sequence header's codec
      const codec = videoCodec(b.subarray(data, Math.min(data + size, b.length)));
      if (codec !== null) return codec;
    } else if (++others > MAX_AUDIO_FIRST) {
      return '';
    }
    off = data + size + 4;
  }
}

const hex2 = (v) => v.toString(16).padStart(2, '0');

// videoCodec reads a video tag's data: the codec of a sequence header,
// null for another tag (a frame before it).
function videoCodec(d) {
  if (d.length < 1) return null;
  if (d[0] & 0x80) {
    // Enhanced RTMP: frame type, packet type, FourCC.
    if (d.length < 5) return null;
    const packetType = d[0] & 0x0f;
    const fourCC = String.fromCharCode(d[1], d[2], d[3], d[4]);
    if (packetType !== 0) return null; // not a SequenceStart
    const conf = d.subarray(5);
    switch (fourCC) {
      case 'hvc1': return hevc(conf);
      case 'avc1': return avc(conf);
      case 'av01': return 'av01.0.01M.08';
      case 'vp09': return 'vp09.00.10.08';
      default: return fourCC;
    }
  }
  const codecID = d[0] & 0x0f;
  if (d.length < 2 || d[1] !== 0) return null; // not a sequence header
  const conf = d.subarray(5); // after AVCPacketType and CompositionTime
  if (codecID === 7) return avc(conf);
  if (codecID === 12) return hevc(conf);
  return `flv codec ${codecID}`;
}

// avc: AVCDecoderConfigurationRecord: profile, compatibility, level.
function avc(c) {
  if (c.length < 4) return 'avc1.42e01e';
  return `avc1.${hex2(c[1])}${hex2(c[2])}${hex2(c[3])}`;
}

// hevc: HEVCDecoderConfigurationRecord, in the short form mpegts.js uses
// for its source buffers (profile and level).
function hevc(c) {
  if (c.length < 13) return 'hvc1.1.6.L93.B0';
  return `hvc1.${c[1] & 0x1f}.1.L${c[12]}.B0`;
}
