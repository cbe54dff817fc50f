package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// serverFrame frames p as a server's unmasked text frame.
func serverFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op, 0}
	switch n := len(p); {
	case n < 126:
		b[1] = byte(n)
	case n < 1<<16:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// TestBenchSubFeed checks that the benchmarks' subscriber counts every
// event of every message and samples every comment's latency, however
// the reads cut the frames.
func TestBenchSubFeed(t *testing.T) {
	now := time.Now()
	var stream []byte
	want, comments := 0, 0
	for i := range 300 {
		n := 1 + i%40 // up to 40 events: frames of every header size
		evs := make([]string, n)
		for j := range evs {
			typ := "like"
			if j%3 == 0 {
				typ = "comment"
				comments++
			}
			evs[j] = fmt.Sprintf(`{"seq":%d,"type":"%s","time":%d,"content":"%s"}`, i*100+j, typ,
				now.Add(-time.Duration(j)*time.Millisecond).UnixMilli(), strings.Repeat("x", i*7))
		}
		want += n
		msg := `{"jsonrpc":"2.0","method":"Live.room.events","params":{"room_id":1,"events":[` + strings.Join(evs, ",") + `]}}`
		stream = append(stream, serverFrame(0x1, []byte(msg))...)
		if i%50 == 0 {
			stream = append(stream, serverFrame(0x9, []byte(`"seq":`))...) // a ping is not counted
		}
	}
	for _, maxRead := range []int{1, 3, 7, 100, 4096, len(stream)} {
		s := &benchSub{sample: true}
		r := rand.New(rand.NewPCG(1, uint64(maxRead)))
		for b := stream; len(b) > 0; {
			k := min(len(b), 1+r.IntN(maxRead))
			s.feed(b[:k], now)
			b = b[k:]
		}
		got, lat, gone := s.results()
		if got != int64(want) || len(lat) != comments || gone {
			t.Errorf("reads of up to %d bytes: %d events, %d latencies, gone %v; want %d, %d, false", maxRead, got, len(lat), gone, want, comments)
		}
		s.feed(serverFrame(0x8, nil), now)
		if _, _, gone := s.results(); !gone {
			t.Errorf("reads of up to %d bytes: a close frame left the subscriber not gone", maxRead)
		}
	}
}
