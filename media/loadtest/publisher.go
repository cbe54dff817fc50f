package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/mofang-live/mofang/media/flv"
)

// Clip is an H.264 (and optionally AAC) clip held in memory, ready to be
// published by any number of Publishers at once: its frames are parsed
// once, and every publisher sends the same payload bytes.
type Clip struct {
	// SPS and PPS are the H.264 parameter sets.
	SPS, PPS []byte
	// AAC is the audio configuration, nil when the clip has no AAC audio.
	AAC *mpeg4audio.AudioSpecificConfig
	// Frames are the clip's frames in decoding order.
	Frames []Frame
	// Duration is the length of one pass, the offset added to every
	// timestamp on each loop.
	Duration time.Duration
}

// Frame is one frame of a Clip.
type Frame struct {
	Video    bool
	Key      bool
	DTS      time.Duration
	PTSDelta time.Duration
	// Payload is an AVCC access unit (video) or a raw AAC frame (audio).
	Payload []byte
}

// LoadClip reads a clip for Publishers: an FLV file as is, any other file
// (e.g. an MP4) remuxed to FLV by ffmpeg without transcoding.
func LoadClip(ctx context.Context, ffmpeg, path string) (*Clip, error) {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-i", path, "-c", "copy", "-f", "flv", "pipe:1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("remux %s to FLV: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return ParseClip(bytes.NewReader(out))
}

// ParseClip reads an FLV file of H.264 video and optional AAC audio.
func ParseClip(r io.Reader) (*Clip, error) {
	c := &Clip{}
	fr := &flv.Reader{R: r}
	// the last timestamp and frame duration of audio [0] and video [1].
	var last, frameDur [2]time.Duration
	for {
		t, err := fr.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read clip: %w", err)
		}
		ts := time.Duration(t.Timestamp) * time.Millisecond
		switch t.Type {
		case 9:
			v, err := flv.ParseVideoTag(t.Body)
			if err != nil {
				return nil, fmt.Errorf("clip video tag: %w", err)
			}
			if v.CodecName() != "h264" {
				return nil, fmt.Errorf("clip: video codec %q, want h264", v.CodecName())
			}
			if v.IsSequenceHeader() {
				cfg, err := flv.ParseAVCConfig(v.Data)
				if err != nil {
					return nil, fmt.Errorf("clip AVC config: %w", err)
				}
				if len(cfg.SPS) == 0 || len(cfg.PPS) == 0 {
					return nil, errors.New("clip: AVC config without SPS or PPS")
				}
				if cfg.LengthSize != 4 {
					return nil, fmt.Errorf("clip: NAL unit length size %d, want 4", cfg.LengthSize)
				}
				c.SPS, c.PPS = cfg.SPS[0], cfg.PPS[0]
				continue
			}
			if len(v.Data) == 0 {
				continue
			}
			if ts > last[1] {
				frameDur[1] = ts - last[1]
			}
			c.Frames = append(c.Frames, Frame{Video: true, Key: v.IsKeyFrame(), DTS: ts,
				PTSDelta: time.Duration(v.CompositionTime) * time.Millisecond, Payload: v.Data})
			last[1] = ts
		case 8:
			a, err := flv.ParseAudioTag(t.Body)
			if err != nil {
				return nil, fmt.Errorf("clip audio tag: %w", err)
			}
			if a.CodecName() != "aac" {
				continue // only AAC is published
			}
			if a.IsSequenceHeader() {
				var cfg mpeg4audio.AudioSpecificConfig
				if err := cfg.Unmarshal(a.Data); err != nil {
					return nil, fmt.Errorf("clip AAC config: %w", err)
				}
				c.AAC = &cfg
				continue
			}
			if c.AAC != nil && len(a.Data) > 0 {
				if ts > last[0] {
					frameDur[0] = ts - last[0]
				}
				c.Frames = append(c.Frames, Frame{DTS: ts, Payload: a.Data})
				last[0] = ts
			}
		}
	}
	if c.SPS == nil || len(c.Frames) == 0 {
		return nil, errors.New("clip: no H.264 video")
	}
	if !c.Frames[0].Video || !c.Frames[0].Key {
		// players start at a key frame: drop what comes before the first one.
		for i, f := range c.Frames {
			if f.Video && f.Key {
				c.Frames = c.Frames[i:]
				break
			}
		}
	}
	first := c.Frames[0].DTS
	for i := range c.Frames {
		c.Frames[i].DTS -= first
	}
	// a pass lasts as long as its video, so that video timestamps run on
	// evenly from pass to pass (HLS parts keep their length); audio frames
	// that would overlap the next pass are left out.
	c.Duration = last[1] + frameDur[1] - first
	kept := c.Frames[:0]
	for _, f := range c.Frames {
		if f.Video || f.DTS+frameDur[0] <= c.Duration {
			kept = append(kept, f)
		}
	}
	c.Frames = kept
	if c.Duration <= 0 {
		return nil, errors.New("clip: zero duration")
	}
	return c, nil
}

// Publisher publishes a Clip over RTMP at real time, in a loop, with
// timestamps rebased on each pass so that players see one continuous
// stream. It is the load tool's publisher: hundreds of them cost the
// load side little, where hundreds of ffmpeg processes would not.
type Publisher struct {
	// URL is the RTMP(S) URL to publish to, e.g.
	// rtmp://127.0.0.1:1935/live/bench?sign=...
	URL string
	// Clip is what is published.
	Clip *Clip

	frames atomic.Uint64
	sent   atomic.Uint64
}

// Run connects, publishes until ctx ends or the connection fails, and
// returns the error that ended it (nil when ctx ended it).
func (p *Publisher) Run(ctx context.Context) error {
	u, err := rtmpURL(p.URL)
	if err != nil {
		return err
	}
	cl := &gortmplib.Client{URL: u, Publish: true}
	if err := cl.Initialize(ctx); err != nil {
		return fmt.Errorf("connect %s: %w", u.Redacted(), err)
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, cl.Close)
	defer stop()

	tracks := []*gortmplib.Track{{Codec: &codecs.H264{SPS: p.Clip.SPS, PPS: p.Clip.PPS}}}
	if p.Clip.AAC != nil {
		tracks = append(tracks, &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: p.Clip.AAC}})
	}
	w := &gortmplib.Writer{Conn: cl, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("publish %s: %w", u.Redacted(), err)
	}
	// answers from the server (acknowledgements, pings) must be read, or
	// its writes to us would stall once the socket buffer fills.
	go func() {
		for {
			if _, err := cl.Read(); err != nil {
				return
			}
		}
	}()

	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for pass := time.Duration(0); ; pass++ {
		base := pass * p.Clip.Duration
		for _, f := range p.Clip.Frames {
			dts := base + f.DTS
			if wait := time.Until(start.Add(dts)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil
				}
			}
			var msg message.Message
			if f.Video {
				msg = &message.Video{
					ChunkStreamID:   message.VideoChunkStreamID,
					MessageStreamID: 0x1000000,
					Codec:           message.CodecH264,
					IsKeyFrame:      f.Key,
					Type:            message.VideoTypeAU,
					AU:              f.Payload,
					DTS:             dts,
					PTSDelta:        f.PTSDelta,
				}
			} else {
				msg = &message.Audio{
					ChunkStreamID:   message.AudioChunkStreamID,
					MessageStreamID: 0x1000000,
					Codec:           message.CodecMPEG4Audio,
					Rate:            message.AudioRate44100,
					Depth:           message.AudioDepth16,
					IsStereo:        true,
					AACType:         message.AudioAACTypeAU,
					AU:              f.Payload,
					DTS:             dts,
				}
			}
			if err := cl.Write(msg); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("publish %s: %w", u.Redacted(), err)
			}
			p.frames.Add(1)
			p.sent.Store(cl.BytesSent())
		}
	}
}

// Frames returns the number of frames sent so far.
func (p *Publisher) Frames() uint64 { return p.frames.Load() }

// BytesSent returns the bytes written to the connection so far.
func (p *Publisher) BytesSent() uint64 { return p.sent.Load() }

// rtmpURL parses an RTMP URL as OBS and ffmpeg split it: the last path
// element and the query are the stream key ("bench?sign=..."), the rest
// is the application. gortmplib's client takes the stream key from the
// fragment, so the URL it gets is rtmp://host/live#bench?sign=....
func rtmpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("RTMP URL: %w", err)
	}
	if u.Fragment != "" {
		return u, nil
	}
	i := strings.LastIndexByte(u.Path, '/')
	if i <= 0 || i == len(u.Path)-1 {
		return nil, fmt.Errorf("RTMP URL %s: want rtmp://host/app/stream", u.Redacted())
	}
	key := u.Path[i+1:]
	if u.RawQuery != "" {
		key += "?" + u.RawQuery
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = u.Path[:i], "", "", key
	return u, nil
}
