package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mofang-live/mofang/store"
)

// testRedisURL is the Redis of the cluster tests; in CI a missing Redis
// fails them (.ci/setup.sh starts one), elsewhere it skips them.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("MOFANG_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	c, err := net.DialTimeout("tcp", redisHostPort(u), 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI: %v", err)
		}
		t.Skipf("no Redis at %s: %v", u, err)
	}
	c.Close()
	return u
}

// redisHostPort is the host:port of a redis:// URL.
func redisHostPort(u string) string {
	hp := strings.TrimPrefix(u, "redis://")
	if i := strings.IndexAny(hp, "/?"); i >= 0 {
		hp = hp[:i]
	}
	if i := strings.LastIndex(hp, "@"); i >= 0 {
		hp = hp[i+1:]
	}
	return hp
}

// testMySQLDatabase creates a database of its own for a test on the
// MariaDB of MOFANG_TEST_MYSQL_DSN and returns its DSN; it is dropped
// when the test ends.
func testMySQLDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MOFANG_TEST_MYSQL_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/test"
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MariaDB is required in CI: %v", err)
		}
		t.Skipf("no MariaDB: %v", err)
	}
	name := "mofang_cluster_" + randomHex(4)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tcpProxy forwards loopback connections to a target until cut: then it
// closes every connection and refuses new ones until restored. The
// cluster tests put it between the nodes and Redis, so that "Redis is
// down" for the nodes without stopping the Redis other tests share.
type tcpProxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close(); c.Close() }()
	io.Copy(c, up)
	c.Close()
	up.Close()
}

// setCut cuts (true) or restores (false) the proxy.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// clusterNode is one `mofang serve` process of a test cluster, run from
// the test binary (TestMain serves), so that it can be killed.
type clusterNode struct {
	id   string
	api  string // base URL
	http string // host:port
	rtmp int
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// clusterOpts are what the nodes of a test cluster share.
type clusterOpts struct {
	dsn, redis, jwt, sign string
}

func newClusterOpts(t *testing.T, redis string) clusterOpts {
	return clusterOpts{dsn: testMySQLDatabase(t), redis: redis,
		jwt: "cluster-test-jwt-secret-" + randomHex(16), sign: "cluster-sign-" + randomHex(16)}
}

func startClusterNode(t *testing.T, o clusterOpts, id string, extra ...string) *clusterNode {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{id: id, rtmp: freePort(t), logs: &syncBuffer{}, done: make(chan error, 1)}
	n.http = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n.api = "http://" + n.http + "/"
	n.cmd = exec.Command(self, "serve", "--http", n.http, "--data", filepath.Join(t.TempDir(), id),
		"--rtmp", fmt.Sprintf("127.0.0.1:%d", n.rtmp), "--rtsp", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--rtsp-udp", "",
		"--webrtc-addr", "127.0.0.1:0", "--srt-addr", "", "--public-host", "127.0.0.1", "--call-timeout", "1m", "--log-level", "info",
		"--db", o.dsn, "--jwt-secret", o.jwt, "--sign-secret", o.sign,
		"--cluster", o.redis, "--node-id", id, "--node-url", n.api)
	n.cmd.Args = append(n.cmd.Args, extra...)
	n.cmd.Stdout = io.Discard
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.done
		if t.Failed() {
			t.Logf("node %s logs:\n%s", id, n.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.api + "readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case err := <-n.done:
			n.done <- err // for the cleanup, which waits for it
			t.Fatalf("node %s exited: %v\n%s", id, err, n.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready within 20 s:\n%s", id, n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the node with SIGKILL: no goodbye to the cluster.
func (n *clusterNode) kill(t *testing.T) {
	t.Helper()
	n.cmd.Process.Kill()
	<-n.done
	n.done <- errors.New("killed")
}

// alive reports whether the node's process still runs.
func (n *clusterNode) alive() bool {
	select {
	case err := <-n.done:
		n.done <- err
		return false
	default:
		return true
	}
}

// flvReader reads an HTTP-FLV URL in the background and counts its
// bytes, reconnecting never: the test sees when bytes stop.
type flvReader struct {
	bytes atomic.Int64
	first chan struct{}
}

func readFLV(t *testing.T, url string) *flvReader {
	t.Helper()
	r := &flvReader{first: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Logf("GET %s: HTTP %d", url, resp.StatusCode)
			return
		}
		buf := make([]byte, 64<<10)
		once := sync.Once{}
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				r.bytes.Add(int64(n))
				once.Do(func() { close(r.first) })
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// growing reports whether the reader gets more bytes within d.
func (r *flvReader) growing(d time.Duration) bool {
	before := r.bytes.Load()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r.bytes.Load() > before+10_000 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// playURLs returns the signed play URLs of a room as node api hands them
// out (they point at that node).
func playURLs(t *testing.T, api, tok string, roomID any) map[string]any {
	t.Helper()
	read := rpcCall(t, api, tok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)
	return read["play"].(map[string]any)
}

// TestClusterThreeNodes runs three nodes on one MariaDB database and one
// Redis as a user and an admin see them: a stream published to A plays
// from B over every protocol, the list on C is the cluster's, chat
// crosses nodes in one order, a second publisher anywhere is refused; A
// killed, its stream is not live anywhere within seconds and its
// publisher goes on at B; Redis gone for 5 s and back, the cluster heals.
func TestClusterThreeNodes(t *testing.T) {
	needFFmpeg(t)
	redisURL := testRedisURL(t)
	proxy := startTCPProxy(t, redisHostPort(redisURL))
	// A Redis database of its own (the cluster's keys have fixed names):
	// another cluster on the same Redis, such as a bench run, stays out
	// of this one's node list.
	o := newClusterOpts(t, "redis://"+proxy.addr()+"/13")
	suffix := randomHex(3)
	a := startClusterNode(t, o, "a-"+suffix)
	b := startClusterNode(t, o, "b-"+suffix)
	c := startClusterNode(t, o, "c-"+suffix)

	// Users register on different nodes: one database.
	host := rpcCall(t, a.api, "", "User.register", map[string]any{"username": "host", "password": "host-password"})
	hostTok := host["data"].(map[string]any)["access_token"].(string)
	viewerB := rpcCall(t, b.api, "", "User.register", map[string]any{"username": "viewerb", "password": "viewer-password"})
	tokB := viewerB["data"].(map[string]any)["access_token"].(string)
	viewerC := rpcCall(t, c.api, "", "User.register", map[string]any{"username": "viewerc", "password": "viewer-password"})
	tokC := viewerC["data"].(map[string]any)["access_token"].(string)

	room := rpcCall(t, a.api, hostTok, "Live.stream", map[string]any{"room_name": "cluster"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	publishA := room["publish"].(map[string]any)["url"].(string)
	sign := room["publish"].(map[string]any)["sign"].(string)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishA)
	eventually(t, 15*time.Second, "live on A", func() bool { return roomState(t, a.api, hostTok, stream).Status })

	// C lists it live, with A's publisher address, at once: Redis is
	// the truth of what is live, and the room's status follows.
	eventually(t, 3*time.Second, "live in C's list", func() bool {
		st := roomState(t, c.api, tokC, stream)
		return st.Status && st.RoomStatus == 1
	})

	// One HTTP-FLV viewer on each node: the list on C sums them (before
	// the probes below: an HLS player counts until its session times out).
	readers := map[string]*flvReader{}
	for _, n := range []*clusterNode{a, b, c} {
		// A node knows of the stream once its view of the directory has
		// it (within a quarter of a second); before, it is not live there.
		eventually(t, 3*time.Second, "live in "+n.id+"'s list", func() bool { return roomState(t, n.api, tokC, stream).Status })
		p := playURLs(t, n.api, tokC, room["room_id"])
		readers[n.id] = readFLV(t, p["flv"].(string))
	}
	for id, r := range readers {
		select {
		case <-r.first:
		case <-time.After(10 * time.Second):
			t.Fatalf("the viewer on %s got nothing", id)
		}
	}
	eventually(t, 10*time.Second, "3 viewers summed in C's list", func() bool {
		return roomState(t, c.api, tokC, stream).ClientsNumber == 3
	})

	// An admin on C sees every node and the stream with A as its node.
	admin := rpcCall(t, c.api, "", "User.register", map[string]any{"username": "admin", "password": "admin-password"})
	adminTok := admin["data"].(map[string]any)["access_token"].(string)
	setAdminMySQL(t, o.dsn, "admin")
	nodes := rpcCall(t, c.api, adminTok, "Admin.cluster.nodes", map[string]any{})["data"].(map[string]any)["nodes"].([]any)
	if len(nodes) != 3 {
		t.Fatalf("Admin.cluster.nodes on C: %v", nodes)
	}
	var listed map[string]any
	for _, st := range rpcCall(t, c.api, adminTok, "Admin.stream.list", map[string]any{})["data"].(map[string]any)["streams"].([]any) {
		if m := st.(map[string]any); m["name"] == stream {
			listed = m
		}
	}
	if listed == nil || listed["node"] != a.id || listed["reader_count"] != float64(3) {
		t.Fatalf("Admin.stream.list on C: %v", listed)
	}

	// B plays it over RTMP, HTTP-FLV and HLS from B's own URLs (B's
	// relay from A runs already for the viewer above).
	play := playURLs(t, b.api, tokB, room["room_id"])
	for _, proto := range []string{"rtmp", "flv", "hls"} {
		u := play[proto].(string)
		if !strings.Contains(u, b.http) && !strings.Contains(u, fmt.Sprint(b.rtmp)) && proto != "hls" {
			t.Fatalf("%s URL %s does not point at node B", proto, u)
		}
		start := time.Now()
		if got := probe(t, u); got != "h264 640x360, aac" {
			t.Fatalf("B over %s: %q", proto, got)
		}
		t.Logf("first play on B over %s: %v (ffprobe included)", proto, time.Since(start).Round(time.Millisecond))
	}

	// A second publisher on B is refused as on one node.
	publishRefused(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", b.rtmp, stream, sign))

	// Chat: a socket on each node; comments from all three reach every
	// socket in one order, and the online list is the cluster's.
	peers := []*wsPeer{dialPeer(t, a.api, hostTok), dialPeer(t, b.api, tokB), dialPeer(t, c.api, tokC)}
	var online []any
	for _, p := range peers {
		online = p.call("Live.room.join", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)["online"].([]any)
	}
	if len(online) != 3 {
		t.Fatalf("online on C after three joins: %v", online)
	}
	const each = 4
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				p.call("Live.comment", map[string]any{"room_id": room["room_id"], "content": fmt.Sprintf("from %d #%d", i, j)})
			}
		}()
	}
	wg.Wait()
	var orders [][]string
	for _, p := range peers {
		var got []string
		for len(got) < 3*each {
			ev := p.await("Live.room.events", "comment")
			got = append(got, fmt.Sprintf("%v:%v", ev["seq"], ev["content"]))
		}
		orders = append(orders, got)
	}
	for i := 1; i < len(orders); i++ {
		if !slices.Equal(orders[i], orders[0]) {
			t.Fatalf("comments on node %d: %v\non node 0: %v", i, orders[i], orders[0])
		}
	}

	// SIGKILL A: within seconds its stream is live nowhere.
	a.kill(t)
	killed := time.Now()
	eventually(t, 6*time.Second, "not live in C's list after A died", func() bool {
		return !roomState(t, c.api, tokC, stream).Status
	})
	t.Logf("A killed: not live in C's list after %v", time.Since(killed).Round(time.Millisecond))

	// The publisher goes on at B; B's and C's viewers get it back.
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", b.rtmp, stream, sign))
	eventually(t, 10*time.Second, "live on B in C's list", func() bool { return roomState(t, c.api, tokC, stream).Status })
	for _, n := range []*clusterNode{b, c} {
		if !readers[n.id].growing(10 * time.Second) {
			t.Fatalf("the viewer on %s did not get the stream back", n.id)
		}
	}

	// Redis gone for 5 s: the nodes serve what they have and say so.
	proxy.setCut(true)
	time.Sleep(1500 * time.Millisecond)
	resp, err := http.Get(b.api + "readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("readyz is OK on B with Redis down")
	}
	if !readers[b.id].growing(3 * time.Second) {
		t.Error("B's local viewer stopped with Redis down")
	}
	time.Sleep(3500 * time.Millisecond)
	proxy.setCut(false)
	eventually(t, 10*time.Second, "readyz OK again on B and C", func() bool {
		for _, n := range []*clusterNode{b, c} {
			resp, err := http.Get(n.api + "readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the cluster view whole again", func() bool {
		st := roomState(t, c.api, tokC, stream)
		return st.Status && st.ClientsNumber == 2
	})
	for _, n := range []*clusterNode{b, c} {
		if !n.alive() {
			t.Fatalf("node %s died", n.id)
		}
	}
}

// setAdminMySQL makes the user called name an admin in the database of
// dsn.
func setAdminMySQL(t *testing.T, dsn, name string) {
	t.Helper()
	db, err := store.Open(context.Background(), "mysql://"+dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetAdmin(context.Background(), u.ID, true); err != nil {
		t.Fatal(err)
	}
}

// TestClusterNeedsMySQL: a cluster on SQLite is refused at start-up with
// a clear error, before anything listens.
func TestClusterNeedsMySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs syncBuffer
	err := run(ctx, []string{"serve", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--rtmp", "", "--rtsp", "", "--webrtc-addr", "", "--srt-addr", "",
		"--cluster", "redis://127.0.0.1:1/0"}, strings.NewReader(""), io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "MySQL") {
		t.Fatalf("serve --cluster on SQLite: %v", err)
	}
}
