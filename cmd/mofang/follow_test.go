package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mofang-live/mofang/store"
)

// liveNotices opens a websocket to the service at base with tok (in the
// URL, as the pages do), joins no room, and returns the rooms of the
// "live" Live.notify notifications it gets.
func liveNotices(t *testing.T, base, tok string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	out := make(chan map[string]any, 16)
	answered := make(chan struct{}, 1)
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var msg struct {
				ID     any            `json:"id"`
				Method string         `json:"method"`
				Params map[string]any `json:"params"`
			}
			json.Unmarshal(data, &msg)
			switch {
			case msg.Method == "Live.notify":
				out <- msg.Params
			case msg.ID != nil:
				answered <- struct{}{}
			}
		}
	}()
	// Once a call is answered, the service has the socket.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"Server.ping"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("websocket: no answer to a ping")
	}
	return out
}

// TestFollowerToldOfLive: ffmpeg publishes to a room; a follower of its
// host with a websocket open in no room gets one "live" notification; a
// non-follower gets none; the publisher dropping and coming back within
// publisher-grace is the same live (no second notification).
func TestFollowerToldOfLive(t *testing.T) {
	needFFmpeg(t)
	rtmp := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base, stop := startServe(t, t.TempDir(), "--rtmp", rtmp, "--public-host", "127.0.0.1", "--publisher-grace", "20s")
	defer stop()
	user := func(name string) (string, float64) {
		reg := rpcCall(t, base, "", "User.register", map[string]any{"username": name, "password": name + "-pass"})
		d := reg["data"].(map[string]any)
		return d["access_token"].(string), d["user"].(map[string]any)["id"].(float64)
	}
	hostTok, hostID := user("host")
	fanTok, _ := user("fan")
	otherTok, _ := user("other")
	room := rpcCall(t, base, hostTok, "Live.stream", map[string]any{"room_name": "Evening show"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	publishURL := room["publish"].(map[string]any)["url"].(string)
	if r := rpcCall(t, base, fanTok, "User.follow", map[string]any{"user_id": hostID}); r["errno"] != float64(1000) {
		t.Fatalf("User.follow: %v", r)
	}
	fan := liveNotices(t, base, fanTok)
	other := liveNotices(t, base, otherTok)

	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	select {
	case n := <-fan:
		if n["type"] != "live" || n["room_id"] != float64(1) || n["room_name"] != "Evening show" ||
			n["host"].(map[string]any)["id"] != hostID || n["host"].(map[string]any)["nickname"] != "host" {
			t.Fatalf("notification: %v", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower was not told within 20 s of ffmpeg publishing")
	}
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, base, fanTok, stream).Status })

	// The publisher drops and comes back within the grace period.
	publisher.Process.Kill()
	publisher.Wait()
	eventually(t, 15*time.Second, "publisher gone (grace)", func() bool { return !roomState(t, base, fanTok, stream).Status })
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "room live again", func() bool { return roomState(t, base, fanTok, stream).Status })
	select {
	case n := <-fan:
		t.Fatalf("a second notification for the same live: %v", n)
	case n := <-other:
		t.Fatalf("a non-follower was told: %v", n)
	case <-time.After(2 * time.Second):
	}
}

// TestFollowerToldAcrossNodes: two nodes of a cluster (one MariaDB, one
// Redis); ffmpeg publishes to node A, the follower's websocket is on
// node B: it gets one "live" notification, a non-follower on B none.
// The publisher then moves to B within the grace period (ffmpeg killed
// on A, publishing again to B): the same live, no second notification.
func TestFollowerToldAcrossNodes(t *testing.T) {
	needFFmpeg(t)
	redisURL := testRedisURL(t)
	// A Redis database of its own: the cluster's keys and command
	// channels have fixed names (TestClusterThreeNodes uses 13).
	o := newClusterOpts(t, "redis://"+redisHostPort(redisURL)+"/12")
	suffix := randomHex(3)
	a := startClusterNode(t, o, "a-"+suffix)
	b := startClusterNode(t, o, "b-"+suffix)
	user := func(n *clusterNode, name string) (string, float64) {
		reg := rpcCall(t, n.api, "", "User.register", map[string]any{"username": name, "password": name + "-pass"})
		d := reg["data"].(map[string]any)
		return d["access_token"].(string), d["user"].(map[string]any)["id"].(float64)
	}
	hostTok, hostID := user(a, "host")
	fanTok, _ := user(b, "fan")
	otherTok, _ := user(b, "other")
	room := rpcCall(t, a.api, hostTok, "Live.stream", map[string]any{"room_name": "Two nodes"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	sign := room["publish"].(map[string]any)["sign"].(string)
	rpcCall(t, b.api, fanTok, "User.follow", map[string]any{"user_id": hostID})
	// A sees B (its notice goes to every node only when it knows of
	// others): an admin asks A.
	adminTok, _ := user(a, "admin")
	st, err := store.Open(context.Background(), o.dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := st.UserByName(context.Background(), "admin")
	if err == nil {
		err = st.SetAdmin(context.Background(), admin.ID, true)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both nodes in A's view", func() bool {
		r := rpcCall(t, a.api, adminTok, "Admin.cluster.nodes", map[string]any{})
		d, _ := r["data"].(map[string]any)
		nodes, _ := d["nodes"].([]any)
		return len(nodes) == 2
	})
	fan := liveNotices(t, strings.TrimSuffix(b.api, "/"), fanTok)
	other := liveNotices(t, strings.TrimSuffix(b.api, "/"), otherTok)

	onA := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", a.rtmp, stream, sign))
	select {
	case n := <-fan:
		if n["type"] != "live" || n["room_name"] != "Two nodes" || n["host"].(map[string]any)["id"] != hostID {
			t.Fatalf("notification on B: %v", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower on node B was not told within 20 s of ffmpeg publishing to node A")
	}
	eventually(t, 15*time.Second, "live in B's list", func() bool { return roomState(t, b.api, fanTok, stream).Status })

	onA.Process.Kill()
	onA.Wait()
	eventually(t, 15*time.Second, "publisher gone (grace)", func() bool { return !roomState(t, b.api, fanTok, stream).Status })
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", b.rtmp, stream, sign))
	eventually(t, 15*time.Second, "live again, from B", func() bool { return roomState(t, a.api, hostTok, stream).Status })
	select {
	case n := <-fan:
		t.Fatalf("a second notification for the same live: %v", n)
	case n := <-other:
		t.Fatalf("a non-follower was told: %v", n)
	case <-time.After(2 * time.Second):
	}
}
