package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// GateConfig configures a Gate.
type GateConfig struct {
	// URL is asked before a publisher or viewer is admitted.
	URL string
	// Secret signs the request like every webhook (at least 16 bytes).
	Secret []byte
	// Timeout bounds the answer (default 2 s).
	Timeout time.Duration
	// AllowOnError admits the client when the hook cannot be asked or does
	// not answer in time or answers something else than 200 with a JSON
	// body; false refuses it then.
	AllowOnError bool
	// Client sends the requests (default: a client with Timeout).
	Client *http.Client
	// Logger receives the hook's failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// GateRequest is what the hook is asked, as JSON.
type GateRequest struct {
	// Action is "publish" or "play".
	Action string `json:"action"`
	// Stream is the stream name.
	Stream string `json:"stream"`
	// Protocol is the client's protocol ("rtmp", "http-flv", ...).
	Protocol string `json:"protocol"`
	// IP is the client's address.
	IP string `json:"ip"`
	// Params holds the URL's query parameters except the sign.
	Params map[string]string `json:"params,omitempty"`
}

// GateAnswer is the hook's JSON answer: {"allow": true} or
// {"allow": false, "reason": "..."}.
type GateAnswer struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason,omitempty"`
}

// ErrGateRefused is returned (wrapped, with the hook's reason) when the
// hook refuses a client.
var ErrGateRefused = errors.New("refused by the operator's hook")

// Gate asks an operator's HTTP hook, synchronously, whether a publisher or
// viewer may start: unlike the asynchronous events, its answer is waited
// for, so a client the operator refuses never gets a frame.
type Gate struct {
	cfg GateConfig
}

// NewGate returns a Gate for cfg.
func NewGate(cfg GateConfig) (*Gate, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("webhook: the secret must be at least 16 bytes")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gate{cfg: cfg}, nil
}

// Check asks the hook about req. It returns nil to admit the client, an
// error wrapping ErrGateRefused (with the hook's reason) to refuse it, and
// on a failure of the hook itself what AllowOnError says.
func (g *Gate) Check(ctx context.Context, req GateRequest) error {
	ans, err := g.ask(ctx, req)
	if err != nil {
		g.cfg.Logger.Warn("webhook: the gate hook failed", "action", req.Action, "stream", req.Stream, "err", err, "allow", g.cfg.AllowOnError)
		if g.cfg.AllowOnError {
			return nil
		}
		return fmt.Errorf("%w: the hook did not answer", ErrGateRefused)
	}
	if !ans.Allow {
		reason := ans.Reason
		if reason == "" {
			reason = "not allowed"
		}
		if len(reason) > 120 {
			reason = reason[:120]
		}
		return fmt.Errorf("%w: %s", ErrGateRefused, reason)
	}
	return nil
}

func (g *Gate) ask(ctx context.Context, req GateRequest) (GateAnswer, error) {
	var ans GateAnswer
	body, err := json.Marshal(req)
	if err != nil {
		return ans, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return ans, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "MoFang-Webhook/1")
	hr.Header.Set(HeaderEvent, req.Action+".check")
	hr.Header.Set(HeaderDelivery, newID())
	hr.Header.Set(HeaderSignature, Sign(g.cfg.Secret, g.cfg.Now(), body))
	resp, err := g.cfg.Client.Do(hr)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ans, fmt.Errorf("hook answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil {
		return ans, fmt.Errorf("hook's answer: %w", err)
	}
	return ans, nil
}
