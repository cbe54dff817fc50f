package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mofang-live/mofang/store"
)

// The JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// MaxBatch is the most calls one batch may hold.
const MaxBatch = 100

var errInvalidRequest = errors.New("invalid request")

// rawRequest is a request object as sent, each member kept raw so that
// absence, null and wrong types can be told apart.
type rawRequest struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

// servePOST answers one HTTP POST holding a request or a batch.
func (s *Server) servePOST(w http.ResponseWriter, r *http.Request) {
	body := getBuf()
	defer putBuf(body)
	// The body must arrive within BodyTimeout: the HTTP server has no
	// read timeout of its own, since media responses live for hours. A
	// writer that cannot set deadlines (not a real connection) reads as
	// before.
	rc := http.NewResponseController(w)
	deadline := s.cfg.Limits.BodyTimeout > 0 && rc.SetReadDeadline(time.Now().Add(s.cfg.Limits.BodyTimeout)) == nil
	_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if deadline {
		// Clear it before the call runs: the server watches the
		// connection for the client going away, and a passed deadline
		// would look like that.
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooBig):
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse(nil, CodeInvalidRequest,
				fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes)))
		case errors.As(err, &ne) && ne.Timeout():
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body not received within %v", s.cfg.Limits.BodyTimeout), http.StatusRequestTimeout)
		default:
			http.Error(w, "reading request body failed", http.StatusBadRequest)
		}
		return
	}

	ctx := withCaller(r.Context(), s.newCaller(r, false))
	out := s.handle(ctx, body.Bytes())
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// message is what the calls of one message (a POST body or a websocket
// message, a single request or a batch) share.
type message struct {
	costly int // costly calls it may still make
}

// handle answers a message holding a request or a batch, from a POST body
// or a websocket. It returns nil when nothing is to be answered. Its calls
// share one deadline, CallTimeout from now, so that no message holds a
// connection longer than that, however many calls it batches.
func (s *Server) handle(ctx context.Context, data []byte) []byte {
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return errorResponse(nil, CodeParseError, "")
	}
	if s.cfg.CallTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer cancel()
	}
	msg := &message{costly: s.cfg.Limits.CostlyPerBatch}
	if data[0] != '[' {
		return s.call(ctx, msg, data)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return errorResponse(nil, CodeParseError, "")
	}
	switch {
	case len(items) == 0:
		return errorResponse(nil, CodeInvalidRequest, "")
	case len(items) > MaxBatch:
		return errorResponse(nil, CodeInvalidRequest, fmt.Sprintf("a batch may hold at most %d calls", MaxBatch))
	}
	out := make([]byte, 0, 256*len(items))
	out = append(out, '[')
	n := 0
	for _, it := range items {
		resp := s.call(ctx, msg, it)
		if resp == nil {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, resp...)
		n++
	}
	if n == 0 {
		// All notifications: the spec wants nothing at all back.
		return nil
	}
	return append(out, ']')
}

// call runs one request object of msg and returns its response, or nil
// for a notification (which is never answered, not even with an error).
func (s *Server) call(ctx context.Context, msg *message, raw json.RawMessage) (resp []byte) {
	start := time.Now()
	var req rawRequest
	if raw[0] != '{' || json.Unmarshal(raw, &req) != nil {
		return errorResponse(nil, CodeInvalidRequest, "")
	}
	id, idOK := validID(req.ID)
	if !idOK {
		return errorResponse(nil, CodeInvalidRequest, "id must be a string, a number or null")
	}
	notification := req.ID == nil

	var name string
	if string(req.JSONRPC) != `"2.0"` {
		return errorResponse(id, CodeInvalidRequest, `"jsonrpc" must be "2.0"`)
	}
	if len(req.Method) == 0 || req.Method[0] != '"' || json.Unmarshal(req.Method, &name) != nil {
		return errorResponse(id, CodeInvalidRequest, `"method" must be a string`)
	}
	if p := req.Params; p != nil && p[0] != '{' && p[0] != '[' {
		return errorResponse(id, CodeInvalidRequest, `"params" must be an object or an array`)
	}

	m, found := s.methods[name]
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: panic", "method", name, "panic", p)
			resp = errorResponse(id, CodeInternalError, "")
		}
		s.observe(m, start, isError(id, resp))
		if notification {
			resp = nil
		}
	}()
	if !found {
		return errorResponse(id, CodeMethodNotFound, "")
	}
	params, err := m.decode(req.Params)
	if err != nil {
		var ip *invalidParams
		if errors.As(err, &ip) {
			return errorResponse(id, CodeInvalidParams, ip.msg)
		}
		return errorResponse(id, CodeInvalidRequest, "")
	}
	if m.costly && !s.allowCostly(ctx, msg) {
		return statusResponse(id, localized(ctx, fail(ErrnoTooMany)))
	}
	out := getBuf()
	defer putBuf(out)
	out.WriteString(`{"jsonrpc":"2.0","id":`)
	out.Write(appendID(nil, id))
	out.WriteString(`,"result":`)
	if err := m.invoke(ctx, params, out); err != nil {
		var se *Error
		switch {
		case errors.As(err, &se):
			return errorResponseMsg(id, se.Code, se.Message, nil)
		case store.IsUnavailable(err):
			// A database that does not answer (in time) is not a bug of
			// the call: say so, and that it is worth trying again.
			s.log.Warn("rpc: database unavailable", "method", name, "err", err)
			return statusResponse(id, localized(ctx, fail(ErrnoUnavailable)))
		case errors.Is(err, context.Canceled):
			s.log.Debug("rpc: call canceled", "method", name)
		default:
			s.log.Error("rpc: method failed", "method", name, "err", err)
		}
		return errorResponse(id, CodeInternalError, "")
	}
	out.WriteByte('}')
	return bytes.Clone(out.Bytes())
}

// allowCostly takes one of msg's costly calls and a token of the caller's
// address's bucket; false when either has none left. A call refused by
// the message's budget takes no token.
func (s *Server) allowCostly(ctx context.Context, msg *message) bool {
	if msg.costly <= 0 {
		return false
	}
	msg.costly--
	return s.limiter.allow("costly:"+callerOf(ctx).ip, s.cfg.Limits.Costly)
}

// statusResponse is a result that is only a status: {"errno", "errmsg"}.
// Every method's result starts with one, so it fits any method.
func statusResponse(id json.RawMessage, st Status) []byte {
	b := make([]byte, 0, 64+len(id)+len(st.Errmsg))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = appendID(b, id)
	b = append(b, `,"result":{"errno":`...)
	b = strconv.AppendInt(b, int64(st.Errno), 10)
	b = append(b, `,"errmsg":`...)
	b = appendJSONString(b, st.Errmsg)
	return append(b, "}}"...)
}

// Error is a JSON-RPC error a method returns on purpose, with a code of
// the server-defined range (-32000 to -32099). Any other error a method
// returns is logged and answered as -32603 Internal error.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// validID reports whether a raw id is absent, a string, a number or null,
// and returns it for echoing (nil when absent).
func validID(id json.RawMessage) (json.RawMessage, bool) {
	if id == nil {
		return nil, true
	}
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return id, true
	case string(id) == "null":
		return id, true
	}
	return nil, false
}

// codeText is the message of each standard error code, exactly as the
// specification writes it. Details go into the error's "data".
var codeText = map[int]string{
	CodeParseError:     "Parse error",
	CodeInvalidRequest: "Invalid Request",
	CodeMethodNotFound: "Method not found",
	CodeInvalidParams:  "Invalid params",
	CodeInternalError:  "Internal error",
}

// errorResponse encodes an error response with a standard code; detail,
// when not empty, becomes the error's data.
func errorResponse(id json.RawMessage, code int, detail string) []byte {
	var data []byte
	if detail != "" {
		data = appendJSONString(nil, detail)
	}
	return errorResponseMsg(id, code, codeText[code], data)
}

// errorResponseMsg encodes an error response with any code and message.
func errorResponseMsg(id json.RawMessage, code int, msg string, data json.RawMessage) []byte {
	b := make([]byte, 0, len(msg)+len(id)+len(data)+80)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = appendID(b, id)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	if len(data) > 0 && string(data) != "null" {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	return append(b, "}}"...)
}

func appendID(b []byte, id json.RawMessage) []byte {
	if id == nil {
		return append(b, "null"...)
	}
	return append(b, id...)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// isError reports whether resp, a response to id built here, is an error.
func isError(id json.RawMessage, resp []byte) bool {
	k := len(`{"jsonrpc":"2.0","id":`) + len(id)
	if id == nil {
		k += len("null")
	}
	return len(resp) > k && bytes.HasPrefix(resp[k:], []byte(`,"error"`))
}

// observe counts a call of m (nil: an unknown method) and hands it to
// the configured observer. Params are never logged: they can hold
// passwords and tokens.
func (s *Server) observe(m *method, start time.Time, failed bool) {
	name := "(unknown)"
	c := &s.unknownCalls
	if m != nil {
		name, c = m.name, &m.counts
	}
	c.calls.Add(1)
	if failed {
		c.errors.Add(1)
	}
	if s.cfg.ObserveCall != nil {
		s.cfg.ObserveCall(name, time.Since(start), failed)
	}
}
