package main

import (
	"fmt"
	"testing"
	"time"
)

// sessionFigures is a live as Live.session.read shows it.
type sessionFigures struct {
	ID           int64 `json:"id"`
	Live         bool  `json:"live"`
	PeakViewers  int64 `json:"peak_viewers"`
	TotalViewers int64 `json:"total_viewers"`
	Comments     int64 `json:"comments"`
	Chatters     int64 `json:"chatters"`
	Likes        int64 `json:"likes"`
	Gifts        int64 `json:"gifts"`
	Coins        int64 `json:"coins"`
	Samples      []struct {
		Time    int64 `json:"time"`
		Viewers int64 `json:"viewers"`
	} `json:"samples"`
}

// TestLiveSessionFigures is a live on the real service: ffmpeg publishes
// over RTMP, four ffmpeg viewers play it over HTTP-FLV (two), RTMP and
// HLS, two users comment, like and send gifts over websockets. While live
// the session is listed as live with samples of the viewers (four seen);
// once the publisher is gone (after the grace) its figures are exactly
// what happened, the live's leaderboard holds the gifts, and a user who
// is not the host is refused the host's statistics.
func TestLiveSessionFigures(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	url, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--live-sample-interval", "300ms", "--publisher-grace", "1s", "--allow-recharge", "--hls", "mpegts")
	defer stop()

	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "host", "password": "host-pass1"})
	hostTok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, hostTok, "Live.stream", map[string]any{"room_name": "stats"})["data"].(map[string]any)
	stream, roomID := room["stream_name"].(string), room["room_id"]
	publishURL := room["publish"].(map[string]any)["url"].(string)
	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, url, hostTok, stream).Status })

	read := rpcCall(t, url, hostTok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)
	play := read["play"].(map[string]any)
	var viewers []func()
	for _, args := range [][]string{{"-i", play["flv"].(string)}, {"-i", play["flv"].(string)}, {"-i", play["rtmp"].(string)}, {"-i", play["hls"].(string)}} {
		cmd := startFFmpeg(t, append(args, "-c", "copy", "-f", "null", "-")...)
		viewers = append(viewers, func() { cmd.Process.Kill(); cmd.Wait() })
	}
	eventually(t, 20*time.Second, "4 viewers", func() bool { return roomState(t, url, hostTok, stream).ClientsNumber == 4 })

	// Two fans: 3 comments from two people, 2 likes, gifts of 1×5 + 3×1 and 1×100 coins.
	type fan struct {
		tok string
		ws  *wsPeer
	}
	var fans []fan
	for _, name := range []string{"fan1", "fan2"} {
		r := rpcCall(t, url, "", "User.register", map[string]any{"username": name, "password": name + "-pass1"})
		tok := r["data"].(map[string]any)["access_token"].(string)
		rpcCall(t, url, tok, "User.coin.recharge", map[string]any{"amount": 1000})
		ws := dialPeer(t, url, tok)
		ws.call("Live.room.join", map[string]any{"room_id": roomID})
		fans = append(fans, fan{tok, ws})
	}
	fans[0].ws.call("Live.comment", map[string]any{"room_id": roomID, "content": "hello"})
	fans[0].ws.call("Live.comment", map[string]any{"room_id": roomID, "content": "again"})
	fans[1].ws.call("Live.comment", map[string]any{"room_id": roomID, "content": "hi"})
	fans[0].ws.call("Live.like", map[string]any{"room_id": roomID})
	fans[1].ws.call("Live.like", map[string]any{"room_id": roomID})
	fans[0].ws.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 2})
	fans[0].ws.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 1, "count": 3})
	fans[1].ws.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 3})

	list := rpcCall(t, url, hostTok, "Live.session.list", map[string]any{"room_id": roomID})
	var sessions struct {
		Data struct {
			Sessions []sessionFigures `json:"sessions"`
			Total    int              `json:"total"`
		} `json:"data"`
	}
	remarshal(t, list, &sessions)
	if sessions.Data.Total != 1 || !sessions.Data.Sessions[0].Live {
		t.Fatalf("while live: %+v", sessions)
	}
	id := sessions.Data.Sessions[0].ID
	readSession := func(tok string) (int, sessionFigures) {
		var r struct {
			Errno int            `json:"errno"`
			Data  sessionFigures `json:"data"`
		}
		remarshal(t, rpcCall(t, url, tok, "Live.session.read", map[string]any{"session_id": id}), &r)
		return r.Errno, r.Data
	}
	eventually(t, 10*time.Second, "a sample of 4 viewers", func() bool {
		_, s := readSession(hostTok)
		for _, m := range s.Samples {
			if m.Viewers == 4 {
				return true
			}
		}
		return false
	})

	for _, v := range viewers {
		v()
	}
	fans[0].ws.c.CloseNow()
	fans[1].ws.c.CloseNow()
	publisher.Process.Kill()
	publisher.Wait()
	var s sessionFigures
	eventually(t, 30*time.Second, "the live ended", func() bool {
		_, s = readSession(hostTok)
		return !s.Live
	})
	// Viewers a tick may still be adding: wait for them, bounded.
	eventually(t, 5*time.Second, "4 plays counted", func() bool {
		_, s = readSession(hostTok)
		return s.TotalViewers >= 4
	})
	if s.TotalViewers != 4 || s.PeakViewers != 4 || s.Comments != 3 || s.Chatters != 2 || s.Likes != 2 || s.Gifts != 5 || s.Coins != 5+3+100 {
		t.Fatalf("session figures: %+v", s)
	}
	if len(s.Samples) < 2 {
		t.Fatalf("samples: %+v", s.Samples)
	}
	for i := 1; i < len(s.Samples); i++ {
		if s.Samples[i].Time <= s.Samples[i-1].Time {
			t.Fatalf("samples out of order: %+v", s.Samples)
		}
	}

	var rank struct {
		Data struct {
			Live  bool `json:"live"`
			Ranks []struct {
				Nickname string `json:"nickname"`
				Coins    int64  `json:"coins"`
			} `json:"ranks"`
		} `json:"data"`
	}
	remarshal(t, rpcCall(t, url, hostTok, "Live.rank", map[string]any{"room_id": roomID, "scope": "live"}), &rank)
	if rank.Data.Live || len(rank.Data.Ranks) != 2 || rank.Data.Ranks[0].Coins != 100 || rank.Data.Ranks[1].Coins != 8 ||
		rank.Data.Ranks[0].Nickname == "" {
		t.Fatalf("the last live's ranking: %+v", rank)
	}
	if errno, _ := readSession(fans[0].tok); errno != 1006 {
		t.Fatalf("a fan reading the host's statistics: errno %d", errno)
	}
}

// TestClusterLiveSession: a live published to node A of a two-node
// cluster, watched by one ffmpeg viewer on A and two on B, is one session
// (A owns it): A's samples count the viewers of both nodes, and once the
// live ended its total counts every node's plays, B's added by B.
func TestClusterLiveSession(t *testing.T) {
	needFFmpeg(t)
	// A Redis database of its own: the cluster's keys have fixed names.
	o := newClusterOpts(t, "redis://"+redisHostPort(testRedisURL(t))+"/12")
	suffix := randomHex(3)
	extra := []string{"--live-sample-interval", "300ms", "--publisher-grace", "1s"}
	a := startClusterNode(t, o, "a-"+suffix, extra...)
	b := startClusterNode(t, o, "b-"+suffix, extra...)

	host := rpcCall(t, a.api, "", "User.register", map[string]any{"username": "host", "password": "host-password"})
	hostTok := host["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, a.api, hostTok, "Live.stream", map[string]any{"room_name": "cluster stats"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))
	var viewers []func()
	for _, n := range []*clusterNode{a, b, b} {
		eventually(t, 15*time.Second, "live on "+n.id, func() bool { return roomState(t, n.api, hostTok, stream).Status })
		cmd := startFFmpeg(t, "-i", playURLs(t, n.api, hostTok, room["room_id"])["flv"].(string), "-c", "copy", "-f", "null", "-")
		viewers = append(viewers, func() { cmd.Process.Kill(); cmd.Wait() })
	}
	eventually(t, 15*time.Second, "3 viewers in the cluster", func() bool { return roomState(t, b.api, hostTok, stream).ClientsNumber == 3 })

	read := func(api string) (sessionFigures, int) {
		var list struct {
			Data struct {
				Sessions []sessionFigures `json:"sessions"`
				Total    int              `json:"total"`
			} `json:"data"`
		}
		remarshal(t, rpcCall(t, api, hostTok, "Live.session.list", map[string]any{"room_id": room["room_id"]}), &list)
		if len(list.Data.Sessions) == 0 {
			return sessionFigures{}, 0
		}
		var one struct {
			Data sessionFigures `json:"data"`
		}
		remarshal(t, rpcCall(t, api, hostTok, "Live.session.read", map[string]any{"session_id": list.Data.Sessions[0].ID}), &one)
		return one.Data, list.Data.Total
	}
	eventually(t, 10*time.Second, "a sample of the 3 viewers of both nodes", func() bool {
		s, _ := read(b.api)
		for _, m := range s.Samples {
			if m.Viewers == 3 {
				return true
			}
		}
		return false
	})
	for _, v := range viewers {
		v()
	}
	publisher.Process.Kill()
	publisher.Wait()
	var s sessionFigures
	var total int
	eventually(t, 30*time.Second, "the live ended with 3 plays counted", func() bool {
		s, total = read(a.api)
		return !s.Live && s.TotalViewers >= 3
	})
	if total != 1 || s.TotalViewers != 3 || s.PeakViewers != 3 {
		t.Fatalf("%d sessions; the last: %+v", total, s)
	}
}
