package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/rpc/token"
)

// benchCluster measures three nodes on one MariaDB database and one Redis,
// all on this machine (the nodes pinned to CPU 0, the load here on CPU 1):
// how long a first viewer on node B waits for a stream published on A
// (B's relay starting), what a relayed viewer costs B against a viewer of
// a local publisher on A, and how room events cross the nodes.
func benchCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mysqlDSN := fs.String("mysql", envOr("MOFANG_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test"), "MariaDB to make the scratch database on")
	redisURL := fs.String("redis", envOr("MOFANG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the cluster")
	streams := fs.Int("streams", 10, "streams published to node A: each gives one cold first play on B")
	viewers := fs.Int("viewers", 200, "HTTP-FLV viewers for the relay cost, on B (relayed) and on A (local)")
	subs := fs.Int("subscribers", 1000, "websocket subscribers per node in one room")
	rate := fs.Int("rate", 200, "comments per second, from as many commenters spread over the nodes")
	duration := fs.Duration("duration", 10*time.Second, "measuring time of each part")
	clipPath := fs.String("clip", "testdata/clip.mp4", "clip ffmpeg publishes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *streams < 2 || *viewers < 2 || *rate > 3**subs {
		return errors.New("bench cluster: want at least 2 streams and 2 viewers, and no more commenters than subscribers")
	}
	for _, tool := range []string{"ffmpeg", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench cluster needs %s", tool)
		}
	}
	dsn, drop, err := benchMySQL(ctx, "mysql://"+*mysqlDSN)
	if err != nil {
		return err
	}
	defer drop()
	_, users, err := seedRoomUsers(ctx, dsn, 3**subs+*streams)
	if err != nil {
		return err
	}
	owners, members := users[:*streams], users[*streams:]

	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	var nodes []*benchServer
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	for _, id := range []string{"a", "b", "c"} {
		n, err := startBenchNode(ctx, stderr, dsn, *redisURL, "bench-"+id+"-"+suffix)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	fmt.Fprintf(stdout, "mofang bench cluster: 3 nodes on CPU 0 (one MariaDB database, one Redis), load on this process\n")

	// Streams published to A.
	names := make([]string, *streams)
	var roomID string
	for i, owner := range owners {
		room, err := createRoomAs(a, owner, fmt.Sprintf("bench %d", i))
		if err != nil {
			return err
		}
		names[i] = room.StreamName
		if i == 0 {
			roomID = room.RoomID
		}
		stop, err := publish(ctx, *clipPath, room.Publish.URL)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, name := range names {
		if err := waitLiveFLV(ctx, "http://"+a.http+"/live/"+name+".flv"); err != nil {
			return fmt.Errorf("stream %s on A: %w", name, err)
		}
	}

	// Every node's view of the directory has the streams (it is at most a
	// quarter of a second old).
	if err := waitListed(ctx, b, members[0], len(names)); err != nil {
		return err
	}

	// 1. First play: a cold HTTP-FLV viewer on B of each stream (B's relay
	// starts), against a viewer on A (local).
	var local, relayed []time.Duration
	for i, name := range names {
		if i == 0 {
			continue // kept cold-free for part 2
		}
		d, err := firstVideo(ctx, "http://"+a.http+"/live/"+name+".flv")
		if err != nil {
			return fmt.Errorf("first play on A: %w", err)
		}
		local = append(local, d)
		d, err = firstVideo(ctx, "http://"+b.http+"/live/"+name+".flv")
		if err != nil {
			return fmt.Errorf("first play on B: %w", err)
		}
		relayed = append(relayed, d)
	}
	slices.Sort(local)
	slices.Sort(relayed)
	fmt.Fprintf(stdout, "first play, HTTP-FLV GET to first video tag, %d streams: on A (local) p50 %v p99 %v; on B (relay from A starts) p50 %v p99 %v\n",
		len(local), pctDur(local, 0.5), pctDur(local, 0.99), pctDur(relayed, 0.5), pctDur(relayed, 0.99))

	// 2. A viewer's cost: V viewers of stream 0 on B (relayed) against V
	// viewers of stream 1 on A (local), each over the node's cost with
	// one viewer.
	relayCost, err := viewerCost(ctx, b, "http://"+b.http+"/live/"+names[0]+".flv", *viewers, *duration)
	if err != nil {
		return err
	}
	localCost, err := viewerCost(ctx, a, "http://"+a.http+"/live/"+names[1]+".flv", *viewers, *duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "viewer cost, %d HTTP-FLV viewers: relayed on B %.3f CPU-ms/viewer-s, local on A %.3f: ratio %.2f\n",
		*viewers, relayCost, localCost, relayCost/localCost)

	// 3. Room events across nodes: subscribers on every node, commenters
	// spread over the nodes, each event's latency from its time (stamped
	// by the node it was sent to) to its arrival.
	join := []byte(`{"jsonrpc":"2.0","id":"join","method":"Live.room.join","params":{"room_id":"` + roomID + `"}}`)
	reader, err := newSubReader()
	if err != nil {
		return err
	}
	defer reader.close()
	clients := make([]*benchSub, 3**subs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var dialErr atomic.Pointer[error]
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n := nodes[i%3]
			c, err := dialSub(ctx, reader, "ws://"+n.http+"/", n.token(members[i]), join, i%30 < 3)
			if err != nil {
				dialErr.CompareAndSwap(nil, &err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if e := dialErr.Load(); e != nil {
		return fmt.Errorf("subscribing: %w", *e)
	}
	time.Sleep(2 * time.Second)
	for _, c := range clients {
		c.reset()
	}
	t0 := time.Now()
	sent := comment(ctx, clients[:*rate], roomID, *duration)
	elapsed := time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	var delivered int64
	lat := make([][]time.Duration, 3)
	closed := 0
	for i, c := range clients {
		d, l, gone := c.results()
		delivered += d
		lat[i%3] = append(lat[i%3], l...)
		if gone {
			closed++
		}
	}
	fmt.Fprintf(stdout, "room events, 3 x %d subscribers, %.0f comments/s sent over the 3 nodes: %.0f deliveries/s, sockets closed %d\n",
		*subs, float64(sent)/elapsed.Seconds(), float64(delivered)/elapsed.Seconds(), closed)
	var all []time.Duration
	for i, l := range lat {
		slices.Sort(l)
		all = append(all, l...)
		fmt.Fprintf(stdout, "  subscribers on %c: latency p50 %v p99 %v (%d samples)\n", 'A'+i, pctDur(l, 0.5), pctDur(l, 0.99), len(l))
	}
	slices.Sort(all)
	fmt.Fprintf(stdout, "  every node: p50 %v p99 %v\n", pctDur(all, 0.5), pctDur(all, 0.99))
	return nil
}

// startBenchNode starts one node of the bench's cluster, pinned to CPU 0.
func startBenchNode(ctx context.Context, stderr io.Writer, dsn, redisURL, id string) (*benchServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mofang-bench-node-")
	if err != nil {
		return nil, err
	}
	n := &benchServer{dir: dir}
	if n.issuer, err = token.NewIssuer([]byte(benchSecret), time.Hour); err != nil {
		n.close()
		return nil, err
	}
	if n.http, err = freeAddr(); err != nil {
		n.close()
		return nil, err
	}
	if n.rtmp, err = freeAddr(); err != nil {
		n.close()
		return nil, err
	}
	n.cmd = exec.CommandContext(ctx, "taskset", "-c", "0", self, "serve", "--http", n.http, "--rtmp", n.rtmp, "--rtsp", "", "--rtsp-udp", "",
		"--webrtc-addr", "", "--srt-addr", "", "--db", dsn, "--data", dir, "--jwt-secret", benchSecret, "--sign-secret", benchSecret,
		"--log-level", "warn", "--public-host", "127.0.0.1", "--conns-per-ip", "0", "--rtmp-pending-per-ip", "0",
		"--record-dir", "", "--cluster", redisURL, "--node-id", id, "--node-url", "http://"+n.http)
	n.cmd.Stderr = stderr
	if err := n.cmd.Start(); err != nil {
		n.close()
		return nil, fmt.Errorf("starting node %s: %w", id, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.close()
			return nil, fmt.Errorf("node %s not ready within 30 s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createRoomAs makes a user's room through node n's API.
func createRoomAs(n *benchServer, user int64, name string) (benchRoomData, error) {
	var r struct {
		Result struct {
			Errno int           `json:"errno"`
			Data  benchRoomData `json:"data"`
		} `json:"result"`
	}
	err := postJSON("http://"+n.http+"/", n.token(user), `{"jsonrpc":"2.0","id":1,"method":"Live.stream","params":{"room_name":"`+name+`"}}`, &r)
	if err != nil || r.Result.Errno != 1000 {
		return benchRoomData{}, fmt.Errorf("creating a room: errno %d, %v", r.Result.Errno, err)
	}
	return r.Result.Data, nil
}

// waitListed waits until node n lists at least want live rooms.
func waitListed(ctx context.Context, n *benchServer, user int64, want int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r struct {
			Result struct {
				List []struct {
					Status bool `json:"status"`
				} `json:"stream_list"`
			} `json:"result"`
		}
		err := postJSON("http://"+n.http+"/", n.token(user), `{"jsonrpc":"2.0","id":1,"method":"Live.stream.list","params":{"live_only":true}}`, &r)
		live := 0
		for _, it := range r.Result.List {
			if it.Status {
				live++
			}
		}
		if err == nil && live >= want {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("node lists %d live rooms of %d after 20 s (%v)", live, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLiveFLV waits until url serves a video tag.
func waitLiveFLV(ctx context.Context, url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := firstVideo(ctx, url); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no video within 20 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// firstVideo opens an HTTP-FLV URL and returns the time to its first video
// tag.
func firstVideo(ctx context.Context, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	r := &flv.Reader{R: bufio.NewReader(resp.Body)}
	for {
		tag, err := r.ReadTag()
		if err != nil {
			return 0, err
		}
		if tag.Type == flv.TagVideo {
			return time.Since(start), nil
		}
	}
}

// viewerCost returns what one more HTTP-FLV viewer of url costs node n, in
// CPU-ms per viewer-second: n's CPU with v viewers less its CPU with one,
// over v-1.
func viewerCost(ctx context.Context, n *benchServer, url string, v int, d time.Duration) (float64, error) {
	var wg sync.WaitGroup
	defer wg.Wait() // the viewers end once cancel (deferred after) ran
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failed atomic.Int64
	read := func() {
		defer wg.Done()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			failed.Add(1)
			return
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
	}
	wg.Add(1)
	go read()
	time.Sleep(3 * time.Second)
	one, err := cpuOver(n.pid(), d)
	if err != nil {
		return 0, err
	}
	for range v - 1 {
		wg.Add(1)
		go read()
	}
	time.Sleep(3 * time.Second)
	all, err := cpuOver(n.pid(), d)
	if err != nil {
		return 0, err
	}
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d viewers of %s failed", f, url)
	}
	return (all - one) * 1000 / float64(v-1), nil
}

// cpuOver is the share of a core process pid uses over d.
func cpuOver(pid int, d time.Duration) (float64, error) {
	c0, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(d)
	c1, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	return (c1 - c0).Seconds() / time.Since(t0).Seconds(), nil
}
