package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/mofang-live/mofang/media/flv"
)

// viewer is one player. It parses the stream until the first video frame
// (for the time to first frame), then only counts bytes.
type viewer struct {
	flv  bool
	ttff time.Duration

	body  io.ReadCloser     // HTTP-FLV
	nc    net.Conn          // RTMP
	rtmp  *gortmplib.Client // RTMP, for acknowledgements
	bytes atomic.Uint64
	lost  atomic.Bool // the server closed the connection
	done  atomic.Bool
	once  sync.Once
}

var flvClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: -1,
	DisableCompression:  true,
	ReadBufferSize:      16 << 10,
}}

func (v *viewer) dialFLV(ctx context.Context, u string) error {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := flvClient.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	v.body = res.Body
	fr := &flv.Reader{R: res.Body}
	deadline := time.AfterFunc(10*time.Second, func() { res.Body.Close() })
	defer deadline.Stop()
	for {
		tag, err := fr.ReadTag()
		if err != nil {
			res.Body.Close()
			return err
		}
		v.bytes.Add(uint64(len(tag.Body)))
		if tag.Type == flv.TagVideo {
			if vt, err := flv.ParseVideoTag(tag.Body); err == nil && !vt.IsSequenceHeader() {
				v.ttff = time.Since(start)
				return nil
			}
		}
	}
}

func (v *viewer) dialRTMP(ctx context.Context, rawURL string) error {
	start := time.Now()
	u, err := rtmpURL(rawURL)
	if err != nil {
		return err
	}
	c := &gortmplib.Client{URL: u}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Initialize(ictx); err != nil {
		return err
	}
	v.rtmp = c
	v.nc = c.NetConn()
	v.nc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	for {
		msg, err := c.Read()
		if err != nil {
			v.nc.Close()
			v.nc = nil // not a viewer
			return err
		}
		if m, ok := msg.(*message.Video); ok && m.Type == message.VideoTypeAU {
			v.bytes.Add(uint64(len(m.AU)))
			v.ttff = time.Since(start)
			v.nc.SetReadDeadline(time.Time{}) //nolint:errcheck
			return nil
		}
	}
}

// ackEvery is how often an RTMP viewer acknowledges what it received, as
// players do: the server drops a player that stays silent.
const ackEvery = 10 * time.Second

// drain discards the stream until the viewer is closed.
func (v *viewer) drain() {
	var r io.Reader
	if v.flv {
		r = v.body
	} else {
		r = v.nc
		go v.acknowledge()
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		v.bytes.Add(uint64(n))
		if err != nil {
			if !v.done.Load() && !errors.Is(err, net.ErrClosed) {
				v.lost.Store(true)
			}
			return
		}
	}
}

// acknowledge sends an RTMP Acknowledgement every ackEvery until the
// viewer is closed or the connection fails.
func (v *viewer) acknowledge() {
	t := time.NewTicker(ackEvery)
	defer t.Stop()
	for range t.C {
		if v.done.Load() || v.lost.Load() {
			return
		}
		if err := v.rtmp.Write(&message.Acknowledge{Value: uint32(v.bytes.Load())}); err != nil {
			return
		}
	}
}

func (v *viewer) alive() bool {
	return (v.body != nil || v.nc != nil) && !v.lost.Load() && !v.done.Load()
}

func (v *viewer) close() {
	v.once.Do(func() {
		v.done.Store(true)
		if v.body != nil {
			v.body.Close()
		}
		if v.nc != nil {
			v.nc.Close()
		}
	})
}
