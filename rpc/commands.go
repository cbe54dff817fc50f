package rpc

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// Kinds of the cluster commands the API sends to the node that holds what
// an admin or an owner acts on, and runs when another node sends them
// (see RunCommand).
const (
	// CommandKickStream drops the publisher of stream Arg (Admin.stream.kick,
	// Admin.room.ban).
	CommandKickStream = "kick-stream"
	// CommandKickClient disconnects media client Arg (Admin.client.kick).
	CommandKickClient = "kick-client"
	// CommandRoomReenter takes the websockets of room Arg out of it with a
	// "reenter" event, but the owner's (a ban, a new password); Data is a
	// ReenterCommand.
	CommandRoomReenter = "room-reenter"
	// CommandRoomEvictUser takes one user's websockets out of room Arg
	// with a "reenter" event (a moderator's kick or ban); Data is an
	// EvictCommand.
	CommandRoomEvictUser = "room-evict-user"
)

// ReenterCommand is the Data of a CommandRoomReenter.
type ReenterCommand struct {
	// From is the node that sent it, which took its own sockets out
	// already.
	From   string `json:"from"`
	Owner  int64  `json:"owner"`  // the room's owner, who stays
	Reason string `json:"reason"` // of the "reenter" event: "password", "banned"
	// Stream, if set, is the room's stream: its players on the node are
	// disconnected too (their play signs no longer work).
	Stream string `json:"stream,omitempty"`
}

// commandTimeout bounds sending one command.
const commandTimeout = 2 * time.Second

// RunCommand runs a cluster command meant for the API on this node, and
// reports whether it was one: false leaves it to someone else (the media
// engine). Whoever set Cluster.HandleCommands passes commands here; a
// Server whose Config had no Cluster runs its own.
func (s *Server) RunCommand(c cluster.Command) bool {
	switch c.Kind {
	case CommandKickStream:
		kicked := s.cfg.Media.KickStream(c.Arg)
		s.log.Info("cluster command: kick stream", "stream", c.Arg, "kicked", kicked)
	case CommandKickClient:
		kicked := s.cfg.Media.KickClient(c.Arg)
		s.log.Info("cluster command: kick client", "client", c.Arg, "kicked", kicked)
	case CommandRoomReenter:
		var d ReenterCommand
		room, err := strconv.ParseInt(c.Arg, 10, 64)
		if err != nil || json.Unmarshal(c.Data, &d) != nil {
			s.log.Warn("cluster command not understood", "kind", c.Kind, "arg", c.Arg)
			return true
		}
		if d.From == s.cfg.Cluster.Self().ID {
			return true
		}
		s.revokeHere(room, d.Owner, d.Stream, d.Reason)
	case CommandRoomEvictUser:
		s.runEvict(c)
	case CommandLiveNotice:
		s.runNoticeCommand(c)
	default:
		return false
	}
	return true
}

// othersExist tells whether the cluster has a node besides this one.
func (s *Server) othersExist() bool {
	for _, n := range s.cfg.Cluster.Nodes() {
		if n.ID != s.cfg.Cluster.Self().ID {
			return true
		}
	}
	return false
}

// reenterElsewhere asks every other node to take room's sockets out of
// it, but the owner's, and to drop the players of stream (if not "").
func (s *Server) reenterElsewhere(room, owner int64, stream, reason string) {
	if !s.othersExist() {
		return
	}
	data, _ := json.Marshal(ReenterCommand{From: s.cfg.Cluster.Self().ID, Owner: owner, Reason: reason, Stream: stream})
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	c := cluster.Command{Kind: CommandRoomReenter, Arg: strconv.FormatInt(room, 10), Data: data}
	if err := s.cfg.Cluster.Send(ctx, c); err != nil {
		s.log.Warn("could not tell the other nodes to take sockets out of a room", "room", room, "reason", reason, "error", err)
	}
}

// sendTo sends a command to one node.
func (s *Server) sendTo(ctx context.Context, node, kind, arg string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	return s.cfg.Cluster.Send(ctx, cluster.Command{Node: node, Kind: kind, Arg: arg})
}
