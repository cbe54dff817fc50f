package hls

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// MultivariantPlaylist returns the stream's multivariant playlist, what
// index.m3u8 serves, with rawQuery in every URL it holds, without
// opening a player's session (a playlist that lists this stream among
// others: see the engine's master.m3u8). Like Handle it waits for the
// first segment, for at most ReadyTimeout and while ctx lasts.
func (m *Muxer) MultivariantPlaylist(ctx context.Context, rawQuery string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/index.m3u8", nil)
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = rawQuery
	g, code := m.waitReady(req)
	if g == nil {
		if code == 0 {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("HLS playlist: %s", http.StatusText(code))
	}
	w := &bufferWriter{h: http.Header{}}
	g.m.Handle(w, req)
	if w.code != http.StatusOK && w.code != 0 || w.buf.Len() == 0 {
		return nil, fmt.Errorf("HLS playlist: status %d", w.code)
	}
	return w.buf.Bytes(), nil
}

// bufferWriter is an http.ResponseWriter into memory.
type bufferWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.h }

func (w *bufferWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.Write(b)
}

// ReadFrom reads a file gohlslib copies (io.Copy), with no copy buffer.
func (w *bufferWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.ReadFrom(r)
}
