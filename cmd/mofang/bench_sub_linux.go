package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// subReader reads the sockets of many benchSubs on one goroutine, from
// one epoll set: a subscriber costs the load side a read per message
// and no goroutine, so that the server, not the load, limits what the
// room benchmarks measure.
type subReader struct {
	epfd int
	stop atomic.Bool
	done chan struct{}

	mu   sync.Mutex
	subs map[int32]*benchSub // by socket
}

// newSubReader starts a reader; close stops it.
func newSubReader() (*subReader, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	r := &subReader{epfd: epfd, done: make(chan struct{}), subs: map[int32]*benchSub{}}
	go r.run()
	return r, nil
}

// add makes r read s's socket from now on.
func (r *subReader) add(s *benchSub) error {
	r.mu.Lock()
	r.subs[int32(s.fd)] = s
	r.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(s.fd)}
	if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		r.mu.Lock()
		delete(r.subs, int32(s.fd))
		r.mu.Unlock()
		return fmt.Errorf("epoll: %w", err)
	}
	return nil
}

func (r *subReader) run() {
	// One thread does all the reading, outside the Go scheduler's
	// poller.
	runtime.LockOSThread()
	defer close(r.done)
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for !r.stop.Load() {
		n, err := syscall.EpollWait(r.epfd, events, 100)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		for _, ev := range events[:n] {
			s := r.subs[ev.Fd]
			if s == nil {
				continue
			}
			// Level-triggered: one read each, the rest on the next
			// round.
			m, err := syscall.Read(s.fd, buf)
			switch {
			case m > 0:
				s.feed(buf[:m], now)
			case err == syscall.EAGAIN || err == syscall.EINTR:
			default: // end of stream or a failure
				s.gone.Store(true)
				syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
				delete(r.subs, ev.Fd)
			}
		}
		r.mu.Unlock()
	}
}

// close stops the reader and closes every socket it read.
func (r *subReader) close() {
	r.stop.Store(true)
	<-r.done // within the wait's 100 ms
	syscall.Close(r.epfd)
	r.mu.Lock()
	defer r.mu.Unlock()
	for fd := range r.subs {
		syscall.Close(int(fd))
	}
	clear(r.subs)
}
