package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// PublisherConfig configures a WHIP publisher.
type PublisherConfig struct {
	// URL is the WHIP endpoint.
	URL        string
	API        *webrtc.API
	HTTPClient *http.Client
	Header     http.Header
	Trickle    bool
	// NoAudio and NoVideo leave a track out.
	NoAudio, NoVideo bool
}

// Publisher is a WHIP session seen from the publisher. Write samples to
// Video (H.264, Annex-B access units) and Audio (Opus packets).
type Publisher struct {
	Video, Audio *webrtc.TrackLocalStaticSample

	session
	plis atomic.Uint64
}

// Publish starts a WHIP session and waits until it is connected.
func Publish(ctx context.Context, cfg PublisherConfig) (*Publisher, error) {
	p := &Publisher{}
	if err := p.open(cfg.API, cfg.HTTPClient, cfg.Header); err != nil {
		return nil, err
	}
	add := func(c webrtc.RTPCodecCapability, id string) (*webrtc.TrackLocalStaticSample, error) {
		t, err := webrtc.NewTrackLocalStaticSample(c, id, "pub")
		if err != nil {
			return nil, err
		}
		s, err := p.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkts, _, err := s.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.plis.Add(1)
					}
				}
			}
		}()
		return t, nil
	}
	var err error
	if !cfg.NoVideo {
		if p.Video, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video"); err != nil {
			p.Close()
			return nil, err
		}
	}
	if !cfg.NoAudio {
		if p.Audio, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio"); err != nil {
			p.Close()
			return nil, err
		}
	}
	if err := p.connect(ctx, cfg.URL, cfg.Trickle); err != nil {
		return nil, err
	}
	return p, nil
}

// PLIs returns the number of key frame requests (PLI or FIR) received.
func (p *Publisher) PLIs() uint64 { return p.plis.Load() }

// Location returns the URL of the session resource.
func (p *Publisher) Location() string { return p.sig.location }

// Failed is closed when the connection fails or is closed by the server.
func (p *Publisher) Failed() <-chan struct{} { return p.watch.failed }

// Close ends the session: DELETE on the server, then the peer connection.
func (p *Publisher) Close() error { return p.close() }

// SendH264 reads an Annex-B H.264 stream (without B-frames) and writes it
// to track one access unit every 1/fps seconds, in real time.
func SendH264(ctx context.Context, track *webrtc.TrackLocalStaticSample, r io.Reader, fps int) error {
	hr, err := h264reader.NewReader(r)
	if err != nil {
		return err
	}
	frame := time.Second / time.Duration(fps)
	next := time.Now()
	var au []byte
	for {
		nal, err := hr.NextNAL()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
		if err := track.WriteSample(media.Sample{Data: au, Duration: frame}); err != nil {
			return fmt.Errorf("write video sample: %w", err)
		}
		au = nil
		next = next.Add(frame)
	}
}

// SendOgg reads an Ogg Opus stream with one packet per page (ffmpeg's
// -page_duration 1 makes it so) and writes it to track in real time.
func SendOgg(ctx context.Context, track *webrtc.TrackLocalStaticSample, r io.Reader) error {
	or, _, err := oggreader.NewWith(r)
	if err != nil {
		return err
	}
	next := time.Now()
	var last uint64
	for {
		pkt, hdr, err := or.ParseNextPage()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(pkt) >= 8 && string(pkt[:8]) == "OpusTags" {
			continue
		}
		samples := hdr.GranulePosition - last
		last = hdr.GranulePosition
		if samples == 0 || samples > 48000 {
			samples = 960
		}
		d := time.Duration(samples) * time.Second / 48000
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
		if err := track.WriteSample(media.Sample{Data: pkt, Duration: d}); err != nil {
			return fmt.Errorf("write audio sample: %w", err)
		}
		next = next.Add(d)
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
