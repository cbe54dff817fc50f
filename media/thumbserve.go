package media

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/thumb"
)

// thumbFile is the file name of a stream's thumbnail under /live/<name>/.
const thumbFile = "thumb.jpg"

// ThumbnailStats counts the thumbnails made (see thumb.Stats); zero when
// thumbnails are off.
func (e *Engine) ThumbnailStats() thumb.Stats {
	if e.thumbs == nil {
		return thumb.Stats{}
	}
	return e.thumbs.Stats()
}

// serveThumb serves GET /live/<name>/thumb.jpg: a JPEG of the live
// stream's newest key frame, authorized as a play of the stream (the
// same sign as its other play URLs; protocol "thumb") and never counted
// as a viewer. 404 when the stream is not live or has no picture yet,
// 503 when pictures cannot be made (no ffmpeg, every decode slot busy).
func (e *Engine) serveThumb(w http.ResponseWriter, req *http.Request, name string) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if e.thumbs == nil {
		http.Error(w, "thumbnails are off", http.StatusNotFound)
		return
	}
	if err := e.thumbAuth.authorize(e.hub, req, name, ProtocolThumb); err != nil {
		http.Error(w, "refused: "+hub.PublicReason(err), hub.HTTPStatus(err))
		return
	}
	// A stream of this node, else (in a cluster) the relay of another
	// node's, as for a player.
	s := e.hub.Stream(name)
	if s == nil {
		s = e.hub.PlayStream(req.Context(), name)
	}
	if s == nil || s.Publisher() == nil {
		http.Error(w, "stream not live", http.StatusNotFound)
		return
	}
	pic, err := e.thumbs.Picture(req.Context(), name, thumbSource{s})
	switch {
	case err == nil:
	case errors.Is(err, thumb.ErrNoPicture):
		http.Error(w, "no picture yet", http.StatusNotFound)
		return
	case errors.Is(err, thumb.ErrUnavailable):
		w.Header().Set("Retry-After", strconv.Itoa(int(e.thumbs.Interval().Seconds())))
		http.Error(w, "thumbnail unavailable", http.StatusServiceUnavailable)
		return
	case req.Context().Err() != nil:
		return // the client left
	default:
		http.Error(w, "thumbnail failed", http.StatusBadGateway)
		return
	}
	age := int(e.thumbs.Interval() / time.Second)
	cache := "max-age=" + strconv.Itoa(age)
	if req.URL.Query().Get("sign") != "" {
		cache = "private, " + cache // a room with a password: not for shared caches
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Last-Modified", pic.At.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.Itoa(len(pic.JPEG)))
	if req.Method == http.MethodHead {
		return
	}
	w.Write(pic.JPEG) //nolint:errcheck // the client may have left
}

// thumbSource is a stream as a thumb.Source: its newest key frame with
// the parameter sets of its sequence header, in Annex-B.
type thumbSource struct{ s *hub.Stream }

func (t thumbSource) Done() <-chan struct{} { return t.s.Done() }

// KeyFrame reads the headers before the key frame, as readers do: a
// stream clears its GOP before it stores changed headers, so the key
// frame found next is never older than them.
func (t thumbSource) KeyFrame() (thumb.Frame, error) {
	h := t.s.Headers()
	key := t.s.LastKey()
	if h.Video == nil || key == nil || key.Type() != flv.TagVideo {
		return thumb.Frame{}, fmt.Errorf("%w: no video key frame", thumb.ErrNoPicture)
	}
	seq, err := flv.ParseVideoTag(h.Video.Body())
	if err != nil {
		return thumb.Frame{}, fmt.Errorf("%w: video sequence header: %v", thumb.ErrNoPicture, err)
	}
	v, err := flv.ParseVideoTag(key.Body())
	if err != nil || v.FourCC != seq.FourCC {
		return thumb.Frame{}, fmt.Errorf("%w: key frame does not match its sequence header", thumb.ErrNoPicture)
	}
	var (
		codec      thumb.Codec
		params     [][]byte
		lengthSize int
	)
	switch seq.FourCC {
	case flv.FourCCAVC:
		c, err := flv.ParseAVCConfig(seq.Data)
		if err != nil {
			return thumb.Frame{}, fmt.Errorf("%w: AVC config: %v", thumb.ErrNoPicture, err)
		}
		codec, lengthSize = thumb.H264, c.LengthSize
		params = append(append(params, c.SPS...), c.PPS...)
	case flv.FourCCHEVC:
		c, err := flv.ParseHEVCConfig(seq.Data)
		if err != nil {
			return thumb.Frame{}, fmt.Errorf("%w: HEVC config: %v", thumb.ErrNoPicture, err)
		}
		codec, lengthSize = thumb.H265, c.LengthSize
		params = append(append(append(params, c.VPS...), c.SPS...), c.PPS...)
	default:
		return thumb.Frame{}, fmt.Errorf("%w: codec %q", thumb.ErrNoPicture, seq.CodecName())
	}
	nalus, err := flv.SplitNALUs(v.Data, lengthSize, nil)
	if err != nil {
		return thumb.Frame{}, fmt.Errorf("%w: key frame: %v", thumb.ErrNoPicture, err)
	}
	units := append(params, nalus...)
	n := 0
	for _, u := range units {
		n += 4 + len(u)
	}
	b := make([]byte, 0, n)
	for _, u := range units {
		b = append(b, 0, 0, 0, 1)
		b = append(b, u...)
	}
	return thumb.Frame{Codec: codec, AnnexB: b, ID: key}, nil
}
