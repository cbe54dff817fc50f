package rediscluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mofang-live/mofang/cluster"
)

// envelope is a command on a channel.
type envelope struct {
	From string          `json:"from"` // the sending process's instance
	Cmd  cluster.Command `json:"cmd"`
}

// Send delivers a command at most once: to this node directly, to
// another node or to every node over Redis pub/sub. A command for a node
// that is not listening (dead) goes nowhere. A command for every node
// runs here only if it was published.
func (c *Cluster) Send(ctx context.Context, cmd cluster.Command) error {
	if cmd.Node == c.self.ID {
		return c.enqueue(ctx, cmd)
	}
	b, err := json.Marshal(envelope{From: c.instance, Cmd: cmd})
	if err != nil {
		return fmt.Errorf("rediscluster: send %s: %w", cmd.Kind, err)
	}
	ch := c.k.cmdAll()
	if cmd.Node != "" {
		ch = c.k.cmdNode(cmd.Node)
	}
	if err := c.rdb.Publish(ctx, ch, b).Err(); err != nil {
		return fmt.Errorf("rediscluster: send %s: %w: %w", cmd.Kind, cluster.ErrUnavailable, err)
	}
	if cmd.Node == "" {
		return c.enqueue(ctx, cmd)
	}
	return nil
}

// enqueue hands a command to this node's command goroutine.
func (c *Cluster) enqueue(ctx context.Context, cmd cluster.Command) error {
	select {
	case c.local <- cmd:
		return nil
	case <-c.ctx.Done():
		return fmt.Errorf("rediscluster: send %s: %w: closed", cmd.Kind, cluster.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HandleCommands sets the function that runs this node's commands, in one
// goroutine, in the order they arrive; commands that arrive before it is
// set are dropped.
func (c *Cluster) HandleCommands(fn func(cluster.Command)) {
	c.mu.Lock()
	c.handler = fn
	c.mu.Unlock()
}

// runCommands runs the commands of both channels and this node's own.
func (c *Cluster) runCommands() {
	defer c.wg.Done()
	msgs := c.ps.Channel()
	for {
		var cmd cluster.Command
		select {
		case <-c.ctx.Done():
			return
		case cmd = <-c.local:
		case m, ok := <-msgs:
			if !ok {
				return
			}
			var e envelope
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				c.log.Warn("unreadable command dropped", "channel", m.Channel, "err", err)
				continue
			}
			if e.From == c.instance {
				continue // this node's own, run when sent
			}
			if e.Cmd.Node != "" && e.Cmd.Node != c.self.ID {
				continue
			}
			cmd = e.Cmd
		}
		c.mu.Lock()
		fn := c.handler
		c.mu.Unlock()
		if fn != nil {
			fn(cmd)
		}
	}
}
