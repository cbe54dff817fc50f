// Package webrtc serves live streams over WebRTC: WHEP playback (Output,
// Session) and WHIP ingest (Input), on github.com/pion/webrtc.
//
// Like media/hls and media/record, it is a library the engine feeds: a
// stream is a sequence of FLV tag bodies (type, DTS in milliseconds, body),
// exactly what RTMP carries. An Output turns them into RTP once per stream
// and track; every viewer's Session reads the same packets from a shared
// ring and only encrypts and sends them. An Input turns a publisher's RTP
// back into FLV tag bodies for the engine.
//
// One Server holds the pion API, the single UDP port every session shares
// (and optionally a TCP port for ICE over TCP), the ICE servers handed to
// clients and the table of live sessions the WHIP/WHEP HTTP helpers use.
// Authentication is the caller's: it runs before any of this.
package webrtc
