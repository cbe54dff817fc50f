package webrtc

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// aacTags returns the AAC sequence header and frames of the test clip.
func aacTags(t testing.TB) (header []byte, frames []flv.Tag) {
	for _, tag := range readTags(t, clipNoB(t)) {
		if tag.Type != flv.TagAudio {
			continue
		}
		a, err := flv.ParseAudioTag(tag.Body)
		if err != nil || a.FourCC != flv.FourCCMP4A {
			continue
		}
		if a.IsSequenceHeader() {
			header = tag.Body
		} else {
			frames = append(frames, tag)
		}
	}
	if header == nil || len(frames) == 0 {
		t.Fatal("no AAC in the clip")
	}
	return header, frames
}

// transcodeCPU returns the CPU time of a finished transcoder's ffmpeg.
func transcodeCPU(tc *transcoder) time.Duration {
	st := tc.cmd.ProcessState
	if st == nil {
		return 0
	}
	return st.UserTime() + st.SystemTime()
}

// BenchmarkTranscodeAACToOpus reports the CPU time ffmpeg spends per
// second of stream and the latency it adds (time from an AAC frame handed
// over to the Opus packet covering its start), fed in real time for b.N
// seconds of audio (at least 3).
func BenchmarkTranscodeAACToOpus(b *testing.B) {
	header, frames := aacTags(b)
	secs := max(b.N, 3)
	var mu sync.Mutex
	var outAt []time.Time
	var outPos []int64
	tc, err := startAACToOpus(context.Background(), "ffmpeg", 96000, header, testLogger(b), func(pos int64, pkt []byte) {
		mu.Lock()
		outAt = append(outAt, time.Now())
		outPos = append(outPos, pos+opusDuration(pkt))
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var inAt []time.Time
	var inMs []int64
	clipLen := int64(frames[len(frames)-1].Timestamp) + 23
	for loop := int64(0); ; loop++ {
		done := false
		for _, f := range frames {
			ms := loop*clipLen + int64(f.Timestamp)
			if ms > int64(secs)*1000 {
				done = true
				break
			}
			time.Sleep(time.Until(start.Add(time.Duration(ms) * time.Millisecond)))
			inAt = append(inAt, time.Now())
			inMs = append(inMs, ms)
			tc.in <- tcFrame{ts: uint32(ms), body: f.Body}
		}
		if done {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	tc.close()
	<-tc.stopped
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	j := 0
	for i, ms := range inMs {
		for j < len(outPos) && outPos[j] < ms*48+1024*48000/44100 {
			j++
		}
		if j == len(outPos) {
			break
		}
		lat = append(lat, outAt[j].Sub(inAt[i]))
	}
	if len(lat) == 0 {
		b.Fatal("no Opus out")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(transcodeCPU(tc).Microseconds())/1e3/float64(secs), "cpu-ms/stream-s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "latency-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "latency-p99-ms")
}

// BenchmarkTranscodeOpusToAAC: the same for a WHIP publisher's Opus made
// AAC.
func BenchmarkTranscodeOpusToAAC(b *testing.B) {
	secs := max(b.N, 3)
	// Opus packets of the clip, from ffmpeg (20 ms each)
	header, frames := aacTags(b)
	var opus [][]byte
	var omu sync.Mutex
	enc, err := startAACToOpus(context.Background(), "ffmpeg", 64000, header, testLogger(b), func(pos int64, pkt []byte) {
		omu.Lock()
		opus = append(opus, pkt)
		omu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range frames {
		enc.in <- tcFrame{ts: f.Timestamp, body: f.Body}
	}
	enc.close()
	<-enc.stopped
	var mu sync.Mutex
	var outAt []time.Time
	var outMs []int64
	tc, err := startOpusToAAC(context.Background(), "ffmpeg", 128000, 2, testLogger(b), func(ts uint32, body []byte) {
		a, err := flv.ParseAudioTag(body)
		if err != nil || a.IsSequenceHeader() {
			return
		}
		mu.Lock()
		outAt = append(outAt, time.Now())
		outMs = append(outMs, int64(ts)+21) // end of the 1024-sample frame
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var inAt []time.Time
	var inMs []int64
	for i := 0; i*20 < secs*1000; i++ {
		ms := int64(i * 20)
		time.Sleep(time.Until(start.Add(time.Duration(ms) * time.Millisecond)))
		inAt = append(inAt, time.Now())
		inMs = append(inMs, ms)
		tc.in <- tcFrame{pos: ms * 48, body: opus[i%len(opus)]}
	}
	time.Sleep(300 * time.Millisecond)
	tc.close()
	<-tc.stopped
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	j := 0
	for i, ms := range inMs {
		for j < len(outMs) && outMs[j] < ms+20 {
			j++
		}
		if j == len(outMs) {
			break
		}
		lat = append(lat, outAt[j].Sub(inAt[i]))
	}
	if len(lat) == 0 {
		b.Fatal("no AAC out")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(transcodeCPU(tc).Microseconds())/1e3/float64(secs), "cpu-ms/stream-s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "latency-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "latency-p99-ms")
}

// TestTranscoderCloseWhilePushing: pushing (from WritePacket) while the
// transcoder is being stopped (the last viewer left) drops frames, never
// panics or blocks.
func TestTranscoderCloseWhilePushing(t *testing.T) {
	header, frames := aacTags(t)
	for range 5 {
		tc, err := startAACToOpus(context.Background(), "ffmpeg", 96000, header, testLogger(t), func(int64, []byte) {})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-tc.stopped:
					return
				default:
				}
				f := frames[i%len(frames)]
				tc.push(tcFrame{ts: f.Timestamp, body: f.Body})
			}
		}()
		time.Sleep(20 * time.Millisecond)
		tc.close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("push blocked or ffmpeg not stopped")
		}
	}
}
