package rpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/filecoin-project/go-jsonrpc"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cluster/rediscluster"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// notice is a Live.notify notification as a client reads it.
type notice struct {
	Type       string `json:"type"`
	RoomID     int64  `json:"room_id"`
	RoomName   string `json:"room_name"`
	Title      string `json:"title"`
	ScheduleID *int64 `json:"schedule_id"`
	Host       struct {
		ID       int64  `json:"id"`
		Nickname string `json:"nickname"`
	} `json:"host"`
	Time int64 `json:"time"`
}

// noticeClient is a logged-in websocket in no room, collecting the
// Live.notify notifications it gets.
type noticeClient struct {
	t       *testing.T
	c       *websocket.Conn
	notices chan notice
	pong    chan struct{}
}

// dialNotices opens a websocket for tok and waits until the server
// serves it (a ping answered).
func (e *env) dialNotices(t *testing.T, tok string) *noticeClient {
	t.Helper()
	n := &noticeClient{t: t, c: e.wsDial(tok, false), notices: make(chan notice, 16), pong: make(chan struct{}, 1)}
	go func() {
		for {
			_, data, err := n.c.Read(context.Background())
			if err != nil {
				return
			}
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Params notice          `json:"params"`
			}
			if json.Unmarshal(data, &msg) != nil {
				continue
			}
			switch {
			case msg.Method == rpc.NotifyMethod:
				n.notices <- msg.Params
			case msg.ID != nil:
				n.pong <- struct{}{}
			}
		}
	}()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "Server.ping"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.c.Write(ctx, websocket.MessageText, body); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.pong:
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to a ping")
	}
	return n
}

// next returns the next notice, failing after 5 s.
func (n *noticeClient) next() notice {
	n.t.Helper()
	select {
	case x := <-n.notices:
		return x
	case <-time.After(5 * time.Second):
		n.t.Fatal("no live notice in 5 s")
	}
	return notice{}
}

// none checks that no notice comes for d.
func (n *noticeClient) none(d time.Duration) {
	n.t.Helper()
	select {
	case x := <-n.notices:
		n.t.Fatalf("unexpected notice %+v", x)
	case <-time.After(d):
	}
}

// publishing does what the media engine's events do when a room's stream
// starts or ends: tells the API, then sets the room's status.
func (e *env) publishing(stream string, live bool) {
	e.t.Helper()
	ctx := context.Background()
	e.api.RoomPublishing(ctx, stream, live)
	r, err := e.store.RoomByName(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	status := store.RoomIdle
	if live {
		status = store.RoomLive
	}
	if err := e.store.SetRoomStatus(ctx, r.ID, status); err != nil {
		e.t.Fatal(err)
	}
}

func TestFollow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		aliceTok, aliceID := e.register("alice")
		bobTok, bobID := e.register("bob")
		carolTok, _ := e.register("carol")
		for range 2 { // the second changes nothing
			r := e.call(bobTok, "User.follow", map[string]any{"user_id": aliceID})
			if r.Errno != 1000 || r.Data["following"] != true || r.Data["followers"] != float64(1) {
				t.Fatalf("follow: %+v", r)
			}
		}
		if r := e.call(carolTok, "User.follow", map[string]any{"user_id": aliceID}); r.Data["followers"] != float64(2) {
			t.Fatalf("carol's follow: %+v", r)
		}
		if r := e.call(aliceTok, "User.follow", map[string]any{"user_id": aliceID}); r.Errno != 1040 {
			t.Fatalf("following oneself: %+v, want errno 1040", r)
		}
		if r := e.call(aliceTok, "User.follow", map[string]any{"user_id": 99999}); r.Errno != 1010 {
			t.Fatalf("following nobody: %+v, want errno 1010", r)
		}
		if r := e.call("", "User.follow", map[string]any{"user_id": aliceID}); r.Errno != 1005 {
			t.Fatalf("following logged out: %+v, want errno 1005", r)
		}
		if r := e.call(bobTok, "User.follow.status", map[string]any{"user_id": aliceID}); r.Data["following"] != true || r.Data["followers"] != float64(2) {
			t.Fatalf("bob's follow status: %+v", r)
		}
		if r := e.call(aliceTok, "User.follow.status", map[string]any{"user_id": bobID}); r.Data["following"] != false || r.Data["followers"] != float64(0) {
			t.Fatalf("alice's follow status of bob: %+v", r)
		}
		info := e.call(aliceTok, "User.info", map[string]any{})
		if info.Data["followers"] != float64(2) || info.Data["following"] != float64(0) || info.Data["username"] != "alice" {
			t.Fatalf("alice's info: %+v", info)
		}
		if info := e.call(bobTok, "User.info", map[string]any{}); info.Data["following"] != float64(1) {
			t.Fatalf("bob's info: %+v", info)
		}
		list := e.call(bobTok, "User.followers", map[string]any{"user_id": aliceID, "page": 1, "size": 1})
		users := list.Data["users"].([]any)
		if list.Data["total"] != float64(2) || len(users) != 1 {
			t.Fatalf("alice's followers: %+v", list)
		}
		if ing := e.call(bobTok, "User.following", map[string]any{}); ing.Data["total"] != float64(1) ||
			ing.Data["users"].([]any)[0].(map[string]any)["id"] != float64(aliceID) {
			t.Fatalf("bob follows: %+v", ing)
		}
		for range 2 {
			r := e.call(bobTok, "User.unfollow", map[string]any{"user_id": aliceID})
			if r.Errno != 1000 || r.Data["following"] != false || r.Data["followers"] != float64(1) {
				t.Fatalf("unfollow: %+v", r)
			}
		}
		if info := e.call(bobTok, "User.info", map[string]any{}); info.Data["following"] != float64(0) || info.Data["id"] != float64(bobID) {
			t.Fatalf("bob's info after unfollowing: %+v", info)
		}
	})
}

func TestStreamListFollowed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		_, _, alice := e.liveRoom("alice", "")
		e.liveRoom("carol", "")
		bobTok, _ := e.register("bob")
		aliceRoom, _ := e.store.RoomByName(context.Background(), alice)
		e.call(bobTok, "User.follow", map[string]any{"user_id": aliceRoom.UserID})
		var all, followed struct {
			StreamList []map[string]any `json:"stream_list"`
			Total      int              `json:"total"`
		}
		e.callInto(bobTok, "Live.stream.list", map[string]any{}, &all)
		e.callInto(bobTok, "Live.stream.list", map[string]any{"followed": true, "page": 1}, &followed)
		if all.Total != 2 || len(all.StreamList) != 2 {
			t.Fatalf("every room: %+v", all)
		}
		if followed.Total != 1 || len(followed.StreamList) != 1 || followed.StreamList[0]["name"] != alice {
			t.Fatalf("followed rooms: %+v, want alice's %s alone", followed, alice)
		}
	})
}

// TestLiveNotice: a follower's websocket, in no room, gets one "live"
// notice when the host's stream starts; the publisher coming back (on
// this node or another) within the grace period sends none; a
// non-follower gets none; the next live sends another.
func TestLiveNotice(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		_, roomID, stream := e.liveRoom("alice", "")
		room, _ := e.store.RoomByID(context.Background(), roomID)
		bobTok, _ := e.register("bob")
		daveTok, _ := e.register("dave")
		e.call(bobTok, "User.follow", map[string]any{"user_id": room.UserID})
		bob := e.dialNotices(t, bobTok)
		bob2 := e.dialNotices(t, bobTok) // a second tab
		dave := e.dialNotices(t, daveTok)

		e.publishing(stream, true)
		for _, c := range []*noticeClient{bob, bob2} {
			n := c.next()
			if n.Type != "live" || n.RoomID != roomID || n.Host.ID != room.UserID || n.Host.Nickname != "Nick alice" ||
				n.RoomName != "alice's room" || n.Title != "alice's room" || n.ScheduleID != nil || n.Time == 0 {
				t.Fatalf("notice %+v", n)
			}
		}
		e.publishing(stream, true) // the publisher back within grace
		bob.none(300 * time.Millisecond)
		dave.none(0)

		e.publishing(stream, false)
		e.publishing(stream, true)
		if n := bob.next(); n.RoomID != roomID {
			t.Fatalf("second live: %+v", n)
		}
		bob.none(200 * time.Millisecond)
		dave.none(0)
	})
}

// TestScheduledLives: the owner schedules lives; a live within the
// window of one marks it started and the followers' notice carries its
// title; one that passes unused is marked missed by the sweep; the
// errnos of schedules.
func TestScheduledLives(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			var mu sync.Mutex
			clock := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
			now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			advance := func(to time.Time) { mu.Lock(); clock = to; mu.Unlock() }
			e := newEnvWith(t, d, func(c *rpc.Config) {
				c.Now = now
				c.Schedules.PerRoom = 3
			})
			aliceTok, roomID, stream := e.liveRoom("alice", "")
			room, _ := e.store.RoomByID(context.Background(), roomID)
			bobTok, _ := e.register("bob")
			e.call(bobTok, "User.follow", map[string]any{"user_id": room.UserID})
			t0 := now()
			add := func(tok string, at time.Time, title string) result {
				return e.call(tok, "Live.schedule.add", map[string]any{"room_id": roomID, "at": at.UnixMilli(), "title": title, "cover": "/c.png"})
			}
			concert := add(aliceTok, t0.Add(time.Hour), "Concert")
			if concert.Errno != 1000 || concert.Data["status"] != "upcoming" || concert.Data["title"] != "Concert" ||
				concert.Data["at"] != float64(t0.Add(time.Hour).UnixMilli()) || concert.Data["room_id"] != "0001" {
				t.Fatalf("add: %+v", concert)
			}
			concertID := concert.Data["id"].(float64)
			talk := add(aliceTok, t0.Add(5*time.Hour), "Talk")
			talkID := talk.Data["id"].(float64)
			if r := add(bobTok, t0.Add(time.Hour), "x"); r.Errno != 1006 {
				t.Fatalf("add to another's room: %+v, want 1006", r)
			}
			if r := add(aliceTok, t0.Add(-time.Minute), "x"); r.Errno != 1001 {
				t.Fatalf("add in the past: %+v, want 1001", r)
			}
			if r := e.call(aliceTok, "Live.schedule.add", map[string]any{"room_id": roomID, "at": t0.Add(time.Hour).UnixMilli(), "cover": "javascript:alert(1)"}); r.Errno != 1001 {
				t.Fatalf("a javascript: cover: %+v, want 1001", r)
			}
			if r := add(aliceTok, t0.Add(91*24*time.Hour), "x"); r.Errno != 1001 {
				t.Fatalf("add 91 days ahead: %+v, want 1001", r)
			}
			spare := add(aliceTok, t0.Add(48*time.Hour), "Spare")
			if r := add(aliceTok, t0.Add(49*time.Hour), "One too many"); r.Errno != 1043 {
				t.Fatalf("fourth upcoming live: %+v, want 1043", r)
			}
			if r := e.call(bobTok, "Live.schedule.cancel", map[string]any{"schedule_id": spare.Data["id"]}); r.Errno != 1006 {
				t.Fatalf("cancel of another's: %+v, want 1006", r)
			}
			if r := e.call(aliceTok, "Live.schedule.cancel", map[string]any{"schedule_id": spare.Data["id"]}); r.Errno != 1000 || r.Data["status"] != "cancelled" {
				t.Fatalf("cancel: %+v", r)
			}
			if r := e.call(aliceTok, "Live.schedule.cancel", map[string]any{"schedule_id": 9999}); r.Errno != 1041 {
				t.Fatalf("cancel of nothing: %+v, want 1041", r)
			}
			list := e.call("", "Live.schedule.list", map[string]any{})
			items := list.Data["schedules"].([]any)
			if len(items) != 2 || items[0].(map[string]any)["id"] != concertID || items[1].(map[string]any)["id"] != talkID {
				t.Fatalf("upcoming (no login): %+v", list)
			}

			// Live 20 minutes early: the concert starts.
			bob := e.dialNotices(t, bobTok)
			advance(t0.Add(40 * time.Minute))
			e.publishing(stream, true)
			n := bob.next()
			if n.Title != "Concert" || n.ScheduleID == nil || float64(*n.ScheduleID) != concertID {
				t.Fatalf("notice of a scheduled live: %+v", n)
			}
			if r := e.call("", "Live.schedule.read", map[string]any{"schedule_id": concertID}); r.Data["status"] != "started" {
				t.Fatalf("concert after the live began: %+v", r)
			}
			if r := e.call(aliceTok, "Live.schedule.cancel", map[string]any{"schedule_id": concertID}); r.Errno != 1042 {
				t.Fatalf("cancel of a started live: %+v, want 1042", r)
			}
			e.publishing(stream, false)

			// The talk passes unused: missed 2 h after its time.
			advance(t0.Add(5*time.Hour + 119*time.Minute))
			if n, err := e.api.SweepSchedules(context.Background()); err != nil || n != 0 {
				t.Fatalf("sweep within the window: %d %v", n, err)
			}
			advance(t0.Add(7*time.Hour + time.Second))
			for i, want := range []int64{1, 0} { // a second sweep (another node's) is harmless
				if n, err := e.api.SweepSchedules(context.Background()); err != nil || n != want {
					t.Fatalf("sweep %d: %d %v, want %d", i, n, err, want)
				}
			}
			if r := e.call("", "Live.schedule.read", map[string]any{"schedule_id": talkID}); r.Data["status"] != "missed" {
				t.Fatalf("talk after its window: %+v", r)
			}
			if l := e.call("", "Live.schedule.list", map[string]any{"room_id": roomID}); len(l.Data["schedules"].([]any)) != 0 {
				t.Fatalf("upcoming after all passed: %+v", l)
			}
			// A live now starts nothing: its notice has the room's title.
			e.publishing(stream, true)
			if n := bob.next(); n.ScheduleID != nil || n.Title != "alice's room" {
				t.Fatalf("notice of an unscheduled live: %+v", n)
			}
		})
	}
}

// TestLiveNoticeAcrossNodes: the follower's websocket is on node B, the
// host publishes on node A; B's socket gets the notice once, through
// the cluster's commands on Redis.
func TestLiveNoticeAcrossNodes(t *testing.T) {
	_, prefix := clusterRedis(t)
	st := storetest.Open(t, "sqlite")
	live := &fakeLive{}
	var envs []*env
	var cls []*rediscluster.Cluster
	for _, id := range []string{"a", "b"} {
		cl, err := rediscluster.New(context.Background(), rediscluster.Config{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, Self: cluster.Node{ID: id}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		e := newEnvOn(t, st, live, func(c *rpc.Config) { c.Cluster = cl })
		cl.HandleCommands(func(c cluster.Command) { e.api.RunCommand(c) })
		envs = append(envs, e)
		cls = append(cls, cl)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(cls[0].Nodes()) < 2 || len(cls[1].Nodes()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two nodes do not see each other")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a, b := envs[0], envs[1]
	_, roomID, stream := a.liveRoom("alice", "")
	room, _ := st.RoomByID(context.Background(), roomID)
	bobTok, _ := b.register("bob")
	daveTok, _ := b.register("dave")
	b.call(bobTok, "User.follow", map[string]any{"user_id": room.UserID})
	bob := b.dialNotices(t, bobTok)
	dave := b.dialNotices(t, daveTok)
	a.publishing(stream, true)
	if n := bob.next(); n.RoomID != roomID || n.Type != "live" {
		t.Fatalf("notice on node B: %+v", n)
	}
	b.publishing(stream, true) // the publisher moved to B within grace
	bob.none(500 * time.Millisecond)
	dave.none(0)
}

// noticeHandler is a go-jsonrpc client handler of Live.notify.
type noticeHandler struct{ got chan rpc.Notice }

func (h *noticeHandler) Notify(ctx context.Context, n rpc.Notice) { h.got <- n }

// TestGoJSONRPCNotify: go-jsonrpc's client, on a websocket opened with
// ?events=array, receives the live notice with a "Live" handler's Notify.
func TestGoJSONRPCNotify(t *testing.T) {
	e := newEnv(t, "sqlite")
	_, roomID, stream := e.liveRoom("alice", "")
	room, _ := e.store.RoomByID(context.Background(), roomID)
	bobTok, _ := e.register("bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var bob struct {
		Follow func(ctx context.Context, p rpc.FollowParams) (*rpc.Reply[rpc.FollowData], error)
	}
	h := &noticeHandler{got: make(chan rpc.Notice, 4)}
	closeBob, err := jsonrpc.NewMergeClient(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/?events=array", "User", []any{&bob},
		http.Header{"Authorization": []string{"jwt " + bobTok}},
		jsonrpc.WithMethodNameFormatter(rpc.MethodName),
		jsonrpc.WithClientHandler("Live", h),
		jsonrpc.WithClientHandlerFormatter(rpc.MethodName))
	if err != nil {
		t.Fatal(err)
	}
	defer closeBob()
	if r, err := bob.Follow(ctx, rpc.FollowParams{UserID: room.UserID}); err != nil || r.Errno != rpc.ErrnoOK || !r.Data.Following {
		t.Fatalf("User.follow over go-jsonrpc: %+v %v", r, err)
	}
	e.publishing(stream, true)
	select {
	case n := <-h.got:
		if n.Type != "live" || n.RoomID != roomID || n.Host.ID != room.UserID || n.Title != "alice's room" {
			t.Fatalf("notice %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("go-jsonrpc client: no live notice")
	}
}

// TestFollowersOnlyChatWithFollows: a followers-only room (moderation)
// takes the comments of those who followed its host with User.follow,
// and refuses them again after User.unfollow.
func TestFollowersOnlyChatWithFollows(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		aliceTok, roomID, _ := e.liveRoom("alice", "")
		room, _ := e.store.RoomByID(context.Background(), roomID)
		bobTok, _ := e.register("bob")
		if r := e.call(aliceTok, "Live.room.mod.settings", map[string]any{"room_id": roomID, "followers_only": true}); r.Errno != 1000 {
			t.Fatalf("followers-only: %+v", r)
		}
		bob := e.dialWS(bobTok, false)
		if r := bob.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
		comment := func() int {
			return bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "hi"}).Errno
		}
		if n := comment(); n != 1036 {
			t.Fatalf("a non-follower's comment: errno %d, want 1036", n)
		}
		e.call(bobTok, "User.follow", map[string]any{"user_id": room.UserID})
		if n := comment(); n != 1000 {
			t.Fatalf("a follower's comment: errno %d, want 1000", n)
		}
		e.call(bobTok, "User.unfollow", map[string]any{"user_id": room.UserID})
		if n := comment(); n != 1036 {
			t.Fatalf("after unfollowing: errno %d, want 1036", n)
		}
	})
}
