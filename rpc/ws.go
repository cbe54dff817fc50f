package rpc

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mofang-live/mofang/rpc/roomhub"
)

// wsWriteTimeout bounds one write to a websocket: a peer that takes
// longer is gone or too slow, and is disconnected.
const wsWriteTimeout = 10 * time.Second

// wsConn is one websocket connection: JSON-RPC calls in, their responses
// and room events out. A message to a socket with nothing queued is
// written at once by whoever sends it, if the socket takes it without
// waiting (see writeNow); the others go through a bounded queue, whose
// writer goroutine exists only while the queue holds something or a
// frame is cut, so an idle connection costs one goroutine (its reader).
// Whoever finds the queue full does not wait: the connection is closed
// instead.
type wsConn struct {
	s      *Server
	c      *websocket.Conn
	out    *frameWriter // messages go out through it, not through c
	in     *idleReader  // waits for input between messages
	ctx    context.Context
	cancel context.CancelFunc
	ip     string
	// arrayParams: room events go out with their params as a one-element
	// array (?events=array), as go-jsonrpc's client handlers take them.
	arrayParams bool

	closing atomic.Bool
	calls   sync.WaitGroup // calls running

	sendMu  sync.Mutex // guards queue, closed, writing, first
	queue   [][]byte   // messages to write, at most Limits.SendQueue
	first   [1][]byte  // the queue's room when it holds one message
	closed  bool
	writing bool // a drain goroutine runs
	writers sync.WaitGroup

	mu    sync.Mutex
	rooms map[int64]roomhub.User // rooms joined, as which user
}

type connKey struct{}

// connOf returns the websocket a call came on, or nil for an HTTP POST.
func connOf(ctx context.Context) *wsConn {
	c, _ := ctx.Value(connKey{}).(*wsConn)
	return c
}

// serveWS upgrades a request to a websocket and serves it, on a
// goroutine of its own, until it ends. The JWT comes from the
// Authorization header or a "token" query param. One address holds at
// most Limits.SocketsPerIP websockets (HTTP 429 beyond), and a socket
// without a valid token, which can call only the methods that need no
// login, is closed after Limits.AuthTimeout.
//
// The handler returns once the socket is up, so that the HTTP server's
// goroutine, its buffers and the request are let go: an idle socket
// keeps one goroutine (its reader, with a small stack), small buffers
// (see smallHijack) and no writer (see drain).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	cl := s.newCaller(r, true)
	ip, _ := netip.ParseAddr(cl.ip)
	release, ok := s.sockets.Acquire(ip)
	if !ok {
		s.log.Debug("websocket refused: too many from one address", "ip", cl.ip) // not Warn: a flood would flood the log
		http.Error(w, "too many websockets from this address", http.StatusTooManyRequests)
		return
	}
	hj := &smallHijack{ResponseWriter: w, buffers: s.writeBuffers}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		// The API authenticates with tokens, never cookies, so a page of
		// any origin may connect, as it may POST.
		InsecureSkipVerify: true,
	})
	if err != nil {
		release()
		return // Accept answered the request
	}
	c.SetReadLimit(s.cfg.Limits.MaxMessageBytes)
	// The request's context ends with the handler: the socket's lives on
	// (with its values) until the socket ends.
	ctx, cancel := context.WithCancel(withCaller(context.WithoutCancel(r.Context()), cl))
	conn := &wsConn{
		s: s, c: c, out: hj.writer, in: hj.reader, ctx: ctx, cancel: cancel, ip: cl.ip,
		arrayParams: r.URL.Query().Get("events") == "array",
		rooms:       map[int64]roomhub.User{},
	}
	conn.ctx = context.WithValue(ctx, connKey{}, conn)
	go conn.serve(release)
}

// serve runs the socket until it ends, then releases its place among its
// address's sockets.
func (w *wsConn) serve(release func()) {
	defer release()
	s, c := w.s, w.c
	if !s.track(w) {
		w.close(websocket.StatusGoingAway, "server shutting down")
		w.cancel()
		return
	}
	defer s.untrack(w)
	uid, err := s.cfg.Tokens.Verify(callerOf(w.ctx).token)
	if err == nil { // a logged-in socket hears of the hosts its user follows
		s.notifySockets.add(uid, w)
		defer s.notifySockets.remove(uid, w)
	}
	if err != nil && s.cfg.Limits.AuthTimeout > 0 {
		t := time.AfterFunc(s.cfg.Limits.AuthTimeout, func() {
			w.close(websocket.StatusPolicyViolation, "no valid token: log in and reconnect with it")
		})
		defer t.Stop()
	}

	w.readLoop()
	w.cancel()
	w.calls.Wait() // no call joins a room after leaveAll
	w.sendMu.Lock()
	w.closed = true
	w.sendMu.Unlock()
	w.writers.Wait()
	w.leaveAll()
	c.CloseNow()
}

// readLoop answers calls until the connection fails or is closed. Each
// message runs on a goroutine of its own that ends with it, so that the
// stack a call grows (the database driver's is deep) is not kept by the
// long-lived reader. Messages run one after the other, as sent, unless
// one takes longer than Limits.SlowCall: then the next starts beside it,
// so that a call stuck on the database does not hold up the socket, up to
// Limits.SocketCalls at once (the reader then waits for one to end; each
// ends within CallTimeout). Responses are matched to calls by id; those
// of calls that overtook a slow one come first.
func (w *wsConn) readLoop() {
	limits := w.s.cfg.Limits
	running := make(chan struct{}, limits.SocketCalls)
	var slow *time.Timer                         // made when first needed
	var prev chan struct{}                       // closed when the previous message is answered
	stop := context.AfterFunc(w.ctx, w.in.close) // ends a wait for input
	defer stop()
	for {
		if err := w.in.wait(); err != nil {
			return
		}
		typ, data, err := w.c.Read(w.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			w.c.Close(websocket.StatusUnsupportedData, "text messages only")
			return
		}
		if prev != nil {
			if slow == nil {
				slow = time.NewTimer(limits.SlowCall)
			} else {
				slow.Reset(limits.SlowCall)
			}
			select {
			case <-prev:
			case <-slow.C:
			case <-w.ctx.Done():
				return
			}
			slow.Stop()
		}
		select {
		case running <- struct{}{}:
		case <-w.ctx.Done():
			return
		}
		done := make(chan struct{})
		prev = done
		w.calls.Add(1)
		go func() {
			defer w.calls.Done()
			defer func() { <-running }()
			defer close(done)
			if resp := w.s.handle(w.ctx, data); resp != nil {
				w.enqueue(resp) // a full queue drops the connection
			}
		}()
	}
}

// close closes the websocket with a close handshake, from any goroutine.
func (w *wsConn) close(code websocket.StatusCode, reason string) {
	w.in.closeHandshake()
	w.c.Close(code, reason)
}

// drain writes queued messages in order until the queue is empty, then
// ends. Whatever has queued up while a write was on its way goes out in
// the next write, all at once (up to wsMaxWrite bytes).
func (w *wsConn) drain() {
	defer w.writers.Done()
	var room [8][]byte // on the stack, for most batches
	batch := room[:0]
	for {
		w.sendMu.Lock()
		if (len(w.queue) == 0 && w.out.Flushed()) || w.closed {
			w.first[0] = nil // an idle connection keeps no message
			w.queue = w.first[:0]
			w.writing = false
			w.sendMu.Unlock()
			return
		}
		batch = batch[:0]
		size := 0
		n := 0
		for n < len(w.queue) && (n == 0 || size+len(w.queue[n]) <= wsMaxWrite) {
			size += len(w.queue[n])
			batch = append(batch, w.queue[n])
			w.queue[n] = nil
			n++
		}
		w.queue = w.queue[n:]
		if len(w.queue) == 0 {
			w.queue = w.first[:0]
		}
		w.sendMu.Unlock()

		if err := w.out.WriteMessages(batch, wsWriteTimeout); err != nil {
			w.cancel() // the reader's Read ends, closing the connection
			w.sendMu.Lock()
			w.queue = nil
			w.writing = false
			w.sendMu.Unlock()
			return
		}
		clear(batch)
	}
}

// Deliver queues a room's message without blocking; a full queue closes
// the connection. It implements roomhub.Member.
func (w *wsConn) Deliver(msg []byte) bool {
	if w.arrayParams {
		msg = arrayParams(msg)
	}
	return w.enqueue(msg)
}

// RoomEvents are the params of a Live.room.events notification. Go
// programs that use go-jsonrpc's client receive them with a client
// handler in the "Live" namespace whose method is
//
//	func (h *Handler) RoomEvents(ctx context.Context, ev rpc.RoomEvents)
//
// given with jsonrpc.WithClientHandler("Live", h) and
// jsonrpc.WithClientHandlerFormatter(MethodName), on a websocket opened
// with "?events=array" in its URL: such a socket gets the params as a
// one-element array, which is what go-jsonrpc's handlers take. go-jsonrpc
// runs each notification on a goroutine of its own, so batches may reach
// the handler out of order: order events by Seq.
type RoomEvents struct {
	RoomID int64           `json:"room_id"`
	Events []roomhub.Event `json:"events"`
}

// arrayParams turns a notification whose params are an object (the last
// member, as roomhub writes it) into one whose params are an array of
// that object. Other messages are returned as they are.
func arrayParams(msg []byte) []byte {
	const key = `"params":`
	i := bytes.Index(msg, []byte(key+"{"))
	if i < 0 || !bytes.HasSuffix(msg, []byte("}}")) {
		return msg
	}
	i += len(key)
	out := make([]byte, 0, len(msg)+2)
	out = append(out, msg[:i]...)
	out = append(out, '[')
	out = append(out, msg[i:len(msg)-1]...)
	return append(out, "]}"...)
}

// enqueue sends a message without blocking: at once if the socket takes
// it (see writeNow), else queued, starting a writer if none runs; a full
// queue closes the connection.
func (w *wsConn) enqueue(msg []byte) bool {
	if w.closing.Load() {
		return false
	}
	w.sendMu.Lock()
	if w.closed {
		w.sendMu.Unlock()
		return false
	}
	if !w.writing && len(w.queue) == 0 {
		return w.writeNow(msg) // unlocks sendMu
	}
	if len(w.queue) < w.s.cfg.Limits.SendQueue {
		if w.queue == nil {
			w.queue = w.first[:0]
		}
		w.queue = append(w.queue, msg)
		if !w.writing {
			w.writing = true
			w.writers.Add(1)
			go w.drain()
		}
		w.sendMu.Unlock()
		return true
	}
	queued := len(w.queue)
	w.sendMu.Unlock()
	w.s.slowSockets.Add(1)
	w.s.log.Warn("websocket too slow, closing it", "ip", w.ip, "queued", queued)
	w.drop()
	return false
}

// writeNow writes a message on the caller's goroutine if the socket takes
// it at once (see frameWriter.TryWrite), and otherwise queues it for a
// drain goroutine, as it does for what the socket took only part of or
// what was queued meanwhile. Most messages to a socket that keeps up
// thus go out with no goroutine started: a room's fan-out writes to its
// members in turn. It is called with sendMu held, nothing queued and no
// writer running, and unlocks sendMu.
func (w *wsConn) writeNow(msg []byte) bool {
	w.writing = true
	w.writers.Add(1)
	w.sendMu.Unlock()
	taken, err := w.out.TryWrite(msg)
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if err != nil {
		w.cancel() // the reader's Read ends, closing the connection
		w.queue = nil
		w.writing = false
		w.writers.Done()
		return true // taken, and lost with the connection
	}
	if !taken {
		// Others may have queued behind it meanwhile: it goes first.
		w.queue = append(w.queue, nil)
		copy(w.queue[1:], w.queue)
		w.queue[0] = msg
	}
	if len(w.queue) > 0 || !w.out.Flushed() {
		go w.drain() // counted in writers already
		return true
	}
	w.writing = false
	w.writers.Done()
	return true
}

// drop ends the connection at once, without a close handshake: a peer
// that cannot keep up would not read one either. It does not block and
// may be called from anywhere, room fan-out included.
func (w *wsConn) drop() {
	if w.closing.CompareAndSwap(false, true) {
		w.cancel()
	}
}

// join records that this connection is in a room as u. It reports false
// when the connection is in as many rooms as it may be.
func (w *wsConn) join(roomID int64, u roomhub.User) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, in := w.rooms[roomID]
	if !in && len(w.rooms) >= w.s.cfg.Limits.RoomsPerSocket {
		return false
	}
	w.rooms[roomID] = u
	if !in || prev.ID != u.ID {
		if in {
			w.s.userSockets.remove(prev.ID, w)
		}
		w.s.userSockets.add(u.ID, w)
	}
	return true
}

// member returns who this connection is in a room, if it joined it.
func (w *wsConn) member(roomID int64) (roomhub.User, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.rooms[roomID]
	return u, ok
}

// leave takes this connection out of a room; false if it was not in.
// Whatever the user did in the room on this connection (a call, a
// co-host session) hears of it (see Server.leftRoom).
func (w *wsConn) leave(roomID int64) bool {
	w.mu.Lock()
	u, in := w.rooms[roomID]
	delete(w.rooms, roomID)
	w.mu.Unlock()
	if in {
		w.s.userSockets.remove(u.ID, w)
		w.s.rooms.Leave(roomID, w)
		w.s.leftRoom(w, roomID, u.ID)
	}
	return in
}

// userSockets indexes the websockets in rooms by the user they joined
// as, so that a message can go to one user's sockets only (calls,
// co-host invitations) without going through a room's members.
type userSockets struct {
	mu sync.Mutex
	by map[int64]map[*wsConn]int // user → sockets → rooms joined as the user
}

func (x *userSockets) add(uid int64, w *wsConn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by = map[int64]map[*wsConn]int{}
	}
	m := x.by[uid]
	if m == nil {
		m = map[*wsConn]int{}
		x.by[uid] = m
	}
	m[w]++
}

func (x *userSockets) remove(uid int64, w *wsConn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.by[uid]
	if m == nil {
		return
	}
	if m[w]--; m[w] <= 0 {
		delete(m, w)
	}
	if len(m) == 0 {
		delete(x.by, uid)
	}
}

// inRoom returns the websockets on which a user joined a room.
func (x *userSockets) inRoom(uid, roomID int64) []*wsConn {
	x.mu.Lock()
	conns := make([]*wsConn, 0, len(x.by[uid]))
	for w := range x.by[uid] {
		conns = append(conns, w)
	}
	x.mu.Unlock()
	out := conns[:0]
	for _, w := range conns {
		if u, in := w.member(roomID); in && u.ID == uid {
			out = append(out, w)
		}
	}
	return out
}

func (w *wsConn) leaveAll() {
	w.mu.Lock()
	ids := make([]int64, 0, len(w.rooms))
	for id := range w.rooms {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		w.leave(id)
	}
}

// track registers a connection so that Shutdown can reach it; false once
// the server is shutting down.
func (s *Server) track(c *wsConn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	delete(s.conns, c)
}

// Shutdown closes every websocket with "going away" and waits (until ctx
// ends) for them to finish. New websockets are refused from then on.
// Call it beside http.Server.Shutdown, which does not see websockets.
func (s *Server) Shutdown(ctx context.Context) error {
	s.connsMu.Lock()
	s.shuttingDown = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	for _, c := range conns {
		go c.close(websocket.StatusGoingAway, "server shutting down")
	}
	for {
		s.connsMu.Lock()
		n := len(s.conns)
		s.connsMu.Unlock()
		if n == 0 {
			if s.ownCluster {
				s.cfg.Cluster.Close()
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("rpc: websockets still open at shutdown"), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
