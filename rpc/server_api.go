package rpc

import (
	"context"
	"time"
)

// serverAPI is the Server namespace: calls about the service itself.
type serverAPI struct{ s *Server }

// PingParams are the params of Server.ping: none.
type PingParams struct{}

// PingData is the data of Server.ping.
type PingData struct {
	Time int64 `json:"time"` // the server's clock, Unix milliseconds
}

// Ping answers at once: the cheapest call, for health checks and clock
// sync. It needs no login.
func (a *serverAPI) Ping(ctx context.Context, p PingParams) (*Reply[PingData], error) {
	return &Reply[PingData]{Status: ok(), Data: &PingData{Time: time.Now().UnixMilli()}}, nil
}
