package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/rpc/token"
)

// benchServer is "mofang serve" in a child process pinned to CPU 0, on a
// scratch database seeded with a room owner and n users whose tokens are
// signed here: registering thousands of users through bcrypt would take
// minutes.
type benchServer struct {
	dir    string
	http   string // host:port
	rtmp   string
	issuer *token.Issuer
	owner  int64
	users  []int64
	cmd    *exec.Cmd
}

const benchSecret = "bench-jwt-secret-0123456789abcdef0123"

func startBenchServer(ctx context.Context, stderr io.Writer, users int, extra ...string) (*benchServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mofang-bench-")
	if err != nil {
		return nil, err
	}
	b := &benchServer{dir: dir}
	dsn := "sqlite:" + filepath.Join(dir, "bench.db")
	if b.owner, b.users, err = seedRoomUsers(ctx, dsn, users); err != nil {
		b.close()
		return nil, err
	}
	if b.issuer, err = token.NewIssuer([]byte(benchSecret), time.Hour); err != nil {
		b.close()
		return nil, err
	}
	if b.http, err = freeAddr(); err != nil {
		b.close()
		return nil, err
	}
	if b.rtmp, err = freeAddr(); err != nil {
		b.close()
		return nil, err
	}
	args := append([]string{"-c", "0", self, "serve", "--http", b.http, "--rtmp", b.rtmp, "--rtsp", "", "--rtsp-udp", "", "--srt-addr", "",
		"--db", dsn, "--data", dir, "--jwt-secret", benchSecret, "--log-level", "warn", "--public-host", "127.0.0.1",
		// Thousands of viewers come from this one loopback address.
		"--conns-per-ip", "0", "--rtmp-pending-per-ip", "0", "--webrtc-addr", "127.0.0.1:0"}, extra...)
	b.cmd = exec.CommandContext(ctx, "taskset", args...)
	b.cmd.Stderr = stderr
	if err := b.cmd.Start(); err != nil {
		b.close()
		return nil, fmt.Errorf("starting server: %w", err)
	}
	if err := waitListening(ctx, b.http); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// pid is the server process's id.
func (b *benchServer) pid() int { return b.cmd.Process.Pid }

// token signs an access token for a user.
func (b *benchServer) token(userID int64) string {
	tok, _, _ := b.issuer.Issue(userID)
	return tok
}

// benchRoom is the owner's room, as Live.stream returns it.
type benchRoomData struct {
	RoomID     string `json:"room_id"`
	StreamName string `json:"stream_name"`
	Publish    struct {
		URL  string `json:"url"`
		Sign string `json:"sign"`
	} `json:"publish"`
}

// createRoom makes the owner's room through the API.
func (b *benchServer) createRoom() (benchRoomData, error) {
	return b.createRoomOf(b.owner, "bench")
}

// createRoomOf makes a user's room through the API.
func (b *benchServer) createRoomOf(userID int64, name string) (benchRoomData, error) {
	var r struct {
		Result struct {
			Errno int           `json:"errno"`
			Data  benchRoomData `json:"data"`
		} `json:"result"`
	}
	err := postJSON("http://"+b.http+"/", b.token(userID), `{"jsonrpc":"2.0","id":1,"method":"Live.stream","params":{"room_name":"`+name+`"}}`, &r)
	if err != nil || r.Result.Errno != 1000 {
		return benchRoomData{}, fmt.Errorf("creating the room: errno %d, %v", r.Result.Errno, err)
	}
	return r.Result.Data, nil
}

// close stops the server and removes its files.
func (b *benchServer) close() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Signal(os.Interrupt)
		b.cmd.Wait()
	}
	os.RemoveAll(b.dir)
}

// publish has ffmpeg (on CPU 1, beside the load) publish a clip in a loop
// at real time to url, until the returned stop is called.
func publish(ctx context.Context, clip, url string) (stop func(), err error) {
	ff := exec.CommandContext(ctx, "taskset", "-c", "1", "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv", url)
	if err := ff.Start(); err != nil {
		return nil, fmt.Errorf("starting ffmpeg: %w", err)
	}
	return func() {
		ff.Process.Kill()
		ff.Wait()
	}, nil
}

// parseSteps reads a comma-separated list of positive counts.
func parseSteps(list string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad step %q: want a positive count", f)
		}
		counts = append(counts, n)
	}
	return counts, nil
}
