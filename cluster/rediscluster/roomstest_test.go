package rediscluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// roomsRedisURL is the Redis the tests use: MOFANG_TEST_REDIS_URL, else
// the local one.
func roomsRedisURL() string {
	if u := os.Getenv("MOFANG_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// roomsRedis returns a client of the test Redis and a key prefix of the
// test's own, whose keys are deleted at its end. Without a Redis the test
// is skipped, except in CI (CI=true), where that fails it.
func roomsRedis(t testing.TB) (*redis.Options, string) {
	t.Helper()
	opt, err := redis.ParseURL(roomsRedisURL())
	if err != nil {
		t.Fatalf("MOFANG_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s: %v", roomsRedisURL(), err)
		}
		t.Skipf("no Redis at %s: %v", roomsRedisURL(), err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "mofangtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return opt, prefix
}

// roomsClient returns a client of the Redis at addr (the test Redis with
// its address replaced), closed at the end of the test.
func roomsClient(t testing.TB, opt *redis.Options, addr string) *redis.Client {
	o := *opt
	if addr != "" {
		o.Addr = addr
	}
	o.DialTimeout = time.Second
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// cutProxy is a loopback TCP proxy to Redis whose connections a test can
// cut: while cut, it drops every connection it has and each new one at
// once, as a network that lost the way to Redis. It can also freeze the
// connections it has: they stay open but carry nothing more, as a
// connection whose peer vanished without a word.
type cutProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	frozen map[net.Conn]bool
	wg     sync.WaitGroup
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, frozen: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				p.mu.Lock()
				frozen := p.frozen[src]
				p.mu.Unlock()
				if n > 0 && !frozen {
					if _, err := dst.Write(buf[:n]); err != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			delete(p.frozen, dst)
			delete(p.frozen, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// freeze makes every connection the proxy has carry nothing more; new
// ones work.
func (p *cutProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.frozen[c] = true
	}
}

// setCut cuts (true) or restores (false) the way to Redis.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// roomsWait polls cond every 10 ms for up to d.
func roomsWait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
