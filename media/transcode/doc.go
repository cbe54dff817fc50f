// Package transcode makes the quality ladder of a live: each source
// stream is transcoded once into lower renditions (480p, 360p, ...), each
// published back into the hub as a stream of its own, "<source>_480p",
// that every protocol plays like any other stream.
//
// The transcoder is ffmpeg run as a subprocess, not libav through cgo:
// the binary stays pure Go (static builds, CGO off, as the container
// image needs), a crash or a leak of a decoder fed hostile media takes
// down one ffmpeg process rather than the service, and the CPU it burns
// is the operating system's to account and limit (nice, cgroups, the
// thread count given here), visible per process.
//
// One ffmpeg process per live decodes the source once and scales and
// encodes every rendition (-filter_complex split): the source goes in as
// FLV on its stdin, read from the hub with a Cursor like any in-process
// consumer (the publisher never waits for it), and each rendition comes
// out as FLV on a pipe of its own (file descriptors 3, 4, ...), read and
// published into the hub. Video is H.264 (libx264, veryfast,
// zerolatency: no B-frames, so WebRTC plays every rendition) with key
// frames where the source has them, so that players switch renditions at
// the same points; AAC audio is copied, other audio is encoded to AAC.
//
// How many lives are transcoded at once and the threads of each ffmpeg
// are bounded (Config); a live that cannot get a transcoder plays at its
// source quality alone. The transcoder of a live stops when the live
// ends; an ffmpeg that fails is restarted a bounded number of times.
package transcode
