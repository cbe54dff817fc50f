package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain runs "serve" when the test binary is started as the service
// by the benchmarks (startBenchServer runs os.Executable), and the tests
// otherwise.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mofang:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestStampSEI(t *testing.T) {
	sent := time.Unix(1764586800, 123456789)
	sei := stampSEI(0x0100_0000_0000_00ff, sent)
	nal := sei[4:]
	n, at, ok := stampOf(nal)
	if !ok || n != 0x0100_0000_0000_00ff || !at.Equal(sent) {
		t.Fatalf("single NAL: %d %v %v", n, at, ok)
	}
	if bytes.Contains(nal, []byte{0, 0}) {
		t.Fatal("the stamp needs emulation prevention")
	}
	stap := []byte{24, 0, 2, 0x67, 0x42, byte(len(nal) >> 8), byte(len(nal))}
	if n, _, ok := stampOf(append(stap, nal...)); !ok || n != 0x0100_0000_0000_00ff {
		t.Fatal("STAP-A stamp not found")
	}
	fu := append([]byte{nal[0]&0xe0 | 28, 0x80 | 6}, nal[1:]...)
	if _, _, ok := stampOf(fu); !ok {
		t.Fatal("FU-A stamp not found")
	}
	if _, _, ok := stampOf([]byte{6, 5, 1, 0}); ok {
		t.Fatal("a foreign SEI read as a stamp")
	}
}

// TestBenchWebRTC runs a tiny bench webrtc (2 viewers, 2 s) against a
// real service so that the benchmark cannot rot: both viewers connect and
// get the stamped frames, and the latency line is printed.
func TestBenchWebRTC(t *testing.T) {
	needFFmpeg(t)
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("needs taskset")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	err := benchCommand(ctx, []string{"webrtc", "--viewers", "2", "--step", "2s", "--latency", "2s", "--clip", clip(t)}, &out, &errs)
	t.Logf("%s\n%s", out.String(), errs.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "glass-to-glass WHIP in -> WHEP out, 1 viewer, ") {
		t.Error("no latency figure")
	}
	row := regexp.MustCompile(`(?m)^\s+2\s+0\s+\S+\s+\S+\s+([0-9.]+)\s+([0-9.]+)\s`).FindStringSubmatch(out.String())
	if row == nil {
		t.Fatal("no row with 2 viewers connected and none failed")
	}
	// generous: a loaded machine under -race loses some, but not most
	for i, name := range []string{"packets%", "frames%"} {
		if v, _ := strconv.ParseFloat(row[i+1], 64); v < 50 {
			t.Errorf("%s = %v", name, v)
		}
	}
}
