package rediscluster

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// redisURL is the test Redis: MOFANG_TEST_REDIS_URL, by default the local
// one.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MOFANG_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("MOFANG_TEST_REDIS_URL: %v", err)
	}
	opt.DialTimeout, opt.MaxRetries = time.Second, -1
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI and is not reachable at %s: %v", u, err)
		}
		t.Skipf("Redis not reachable at %s: %v", u, err)
	}
	return u
}

// testEnv is one test's Redis: a unique prefix, a direct client and the
// nodes started on it.
type testEnv struct {
	t      testing.TB
	url    string
	prefix string
	rdb    *redis.Client
	k      keys
}

func newEnv(t testing.TB) *testEnv {
	u := redisURL(t)
	opt, _ := redis.ParseURL(u)
	e := &testEnv{t: t, url: u, prefix: "mofangtest:" + rand.Text()[:12] + ":", rdb: redis.NewClient(opt)}
	e.k = keys{e.prefix}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, k := range e.keys() {
			e.rdb.Del(ctx, k)
		}
		e.rdb.Close()
	})
	return e
}

// keys lists the keys under the test's prefix (SCAN, never KEYS).
func (e *testEnv) keys() []string {
	var out []string
	iter := e.rdb.Scan(context.Background(), 0, e.prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		e.t.Fatalf("scan: %v", err)
	}
	return out
}

// fast is the timing of most tests: a lease of 1 s.
func fast(cfg *Config) {
	cfg.LeaseTTL, cfg.Refresh, cfg.ViewEvery = time.Second, 200*time.Millisecond, 100*time.Millisecond
}

// node starts a node closed at the end of the test.
func (e *testEnv) node(id string, opts ...func(*Config)) *Cluster {
	e.t.Helper()
	cfg := Config{URL: e.url, Prefix: e.prefix, Self: cluster.Node{ID: id, URL: "http://" + id + ".test:8080"},
		Logger: testLogger(e.t)}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, cfg)
	if err != nil {
		e.t.Fatalf("node %s: %v", id, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// eventually waits up to d for cond, failing with what otherwise.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeIDs(ns []cluster.Node) string {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return strings.Join(ids, ",")
}

// proxy is a TCP proxy on loopback to Redis that the test can cut (every
// connection closed, new ones refused) and restore.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
	})
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// setCut cuts (true) or restores (false) the way to Redis.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// urlFor is base (a Redis URL) through the proxy.
func (p *proxy) urlFor(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// newEnvAt is newEnv on a given Redis.
func newEnvAt(t testing.TB, u string) *testEnv {
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, url: u, prefix: "mofangtest:" + rand.Text()[:12] + ":", rdb: redis.NewClient(opt)}
	e.k = keys{e.prefix}
	t.Cleanup(func() { e.rdb.Close() })
	return e
}

// testRedis is a redis-server of the test's own, on a free loopback
// port, that it can kill and start again (empty).
type testRedis struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

func startRedis(t testing.TB) *testRedis {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is required in CI")
		}
		t.Skip("no redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRedis{t: t, port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *testRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs the server and waits until it answers.
func (r *testRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	opt, _ := redis.ParseURL(r.url())
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	eventually(r.t, 5*time.Second, "the test's Redis does not start", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rdb.Ping(ctx).Err() == nil
	})
}

// stop kills the server (SIGKILL: nothing saved).
func (r *testRedis) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}
