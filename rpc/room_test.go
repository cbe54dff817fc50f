package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
)

// liveRoom makes a user with a live room (password "pw" unless empty is
// asked) and returns the owner's token and the room's id and stream name.
func (e *env) liveRoom(owner, password string) (string, int64, string) {
	e.t.Helper()
	tok, _ := e.register(owner)
	r := e.call(tok, "Live.stream", map[string]any{"room_name": owner + "'s room", "password": password})
	name := r.Data["stream_name"].(string)
	e.live.set(name, rpc.LiveStream{Clients: 1})
	room, err := e.store.RoomByName(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, room.ID, name
}

// TestRoomInteractions has three people in a live room over real
// websockets: each sees the others come, comment, like, send gifts and go,
// in order; a wrong password is refused; a closed socket leaves.
func TestRoomInteractions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		aliceTok, roomID, _ := e.liveRoom("alice", "pw")
		bobTok, bobID := e.register("bob")
		carolTok, _ := e.register("carol")
		if _, err := e.store.AddCoins(ctx, bobID, 100); err != nil {
			t.Fatal(err)
		}

		alice := e.dialWS(aliceTok, false)
		j := alice.call("Live.room.join", map[string]any{"room_id": roomID})
		if j.Errno != 1000 || j.Data["viewers"] != float64(1) {
			t.Fatalf("owner join: %+v", j)
		}
		if ev := alice.next(); ev.Type != "online" || len(ev.Online) != 1 {
			t.Fatalf("first event %+v, want the online list", ev)
		}
		alice.next() // her own join

		bob := e.dialWS(bobTok, true) // token in the URL, as a browser
		if r := bob.call("Live.room.join", map[string]any{"room_id": roomID, "password": "wrong"}); r.Errno != 1008 {
			t.Fatalf("wrong password: errno %d", r.Errno)
		}
		if r := bob.call("Live.room.join", map[string]any{"room_id": fmt.Sprintf("%04d", roomID), "password": "pw"}); r.Errno != 1000 {
			t.Fatalf("bob join: %+v", r)
		}
		if ev := bob.next(); ev.Type != "online" || len(ev.Online) != 2 || ev.Online[0].ID != 1 {
			t.Fatalf("bob's first event %+v", ev)
		}
		if ev := alice.next(); ev.Type != "join" || ev.User.ID != bobID || ev.Viewers != 2 {
			t.Fatalf("alice sees %+v, want bob's join", ev)
		}

		carol := e.dialWS(carolTok, false)
		if r := carol.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1008 {
			t.Fatalf("carol without password: errno %d", r.Errno)
		}
		// Carol's refusal told nobody anything.
		alice.quiet(150 * time.Millisecond)

		// A comment reaches everyone, with its author; then likes and a gift.
		if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "  你好 alice  "}); r.Errno != 1000 {
			t.Fatalf("comment: %+v", r)
		}
		if r := alice.call("Live.comment", map[string]any{"room_id": roomID, "content": "hi bob"}); r.Errno != 1000 {
			t.Fatalf("comment: %+v", r)
		}
		if r := bob.call("Live.like", map[string]any{"room_id": roomID}); r.Errno != 1000 || r.Data["likes"] != float64(1) {
			t.Fatalf("like: %+v", r)
		}
		gifts := bob.call("Gift.list", map[string]any{})
		if gifts.Errno != 1000 {
			t.Fatalf("Gift.list: %+v", gifts)
		}
		g := bob.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 2, "count": 3})
		if g.Errno != 1000 || g.Data["coin"] != float64(15) || g.Data["balance"] != float64(85) {
			t.Fatalf("gift: %+v", g)
		}
		for name, c := range map[string]*wsClient{"alice": alice, "bob": bob} {
			want := []string{"comment bob 你好 alice", "comment alice hi bob", "like bob", "gift bob heart x3"}
			for _, w := range want {
				ev := c.next("online", "join")
				got := ev.Type + " " + ev.User.Nickname[len("Nick "):]
				switch ev.Type {
				case "comment":
					got += " " + ev.Content
				case "gift":
					got += fmt.Sprintf(" %s x%d", ev.Gift.Name, ev.Count)
				}
				if got != w {
					t.Fatalf("%s got %q, want %q", name, got, w)
				}
			}
			// The first gift of the room puts bob on its leaderboard.
			if ev := c.next("online", "join"); ev.Type != "rank" || ev.Rank == nil || len(ev.Rank.All) != 1 || ev.Rank.All[0].User.ID != bobID || ev.Rank.All[0].Coins != 15 {
				t.Fatalf("%s got %+v, want the rank event of the gift", name, ev)
			}
		}
		// Coins moved from bob to alice; the room counts its takings.
		aliceUser, _ := e.store.UserByID(ctx, 1)
		bobUser, _ := e.store.UserByID(ctx, bobID)
		room, _ := e.store.RoomByID(ctx, roomID)
		if aliceUser.Coin != 15 || bobUser.Coin != 85 || room.Coin != 15 || room.LikeCount != 1 {
			t.Fatalf("coins: alice %d bob %d room %d, likes %d", aliceUser.Coin, bobUser.Coin, room.Coin, room.LikeCount)
		}

		// Comments are stored (seed 001's Comment model) and listed newest first.
		var list struct {
			Errno int `json:"errno"`
			Data  struct {
				Comments []struct {
					Content string             `json:"content"`
					User    struct{ ID int64 } `json:"user"`
				} `json:"comments"`
				Total int `json:"total"`
			} `json:"data"`
		}
		e.callInto(carolTok, "Live.comment.list", map[string]any{"room_id": roomID, "password": "pw"}, &list)
		if list.Errno != 1000 || list.Data.Total != 2 || list.Data.Comments[0].Content != "hi bob" || list.Data.Comments[1].User.ID != bobID {
			t.Fatalf("comment list: %+v", list)
		}
		if r := e.call(carolTok, "Live.comment.list", map[string]any{"room_id": roomID}); r.Errno != 1008 {
			t.Fatalf("comment list without password: errno %d", r.Errno)
		}

		// A second socket of bob does not make him twice online; closing
		// one keeps him online, closing both makes him leave.
		bob2 := e.dialWS(bobTok, false)
		if r := bob2.call("Live.room.join", map[string]any{"room_id": roomID, "password": "pw"}); r.Errno != 1000 || r.Data["viewers"] != float64(2) {
			t.Fatalf("bob's second socket: %+v", r)
		}
		if ev := bob2.next(); ev.Type != "online" || len(ev.Online) != 2 {
			t.Fatalf("online list with two sockets of bob: %+v", ev)
		}
		bob.c.CloseNow()
		alice.quiet(200 * time.Millisecond)
		if r := bob2.call("Live.room.leave", map[string]any{"room_id": roomID}); r.Errno != 1000 {
			t.Fatalf("leave: %+v", r)
		}
		if ev := alice.next(); ev.Type != "leave" || ev.User.ID != bobID || ev.Viewers != 1 {
			t.Fatalf("alice sees %+v, want bob's leave", ev)
		}
		if r := bob2.call("Live.comment", map[string]any{"room_id": roomID, "content": "still here?"}); r.Errno != 1014 {
			t.Fatalf("comment after leaving: errno %d", r.Errno)
		}

		// look_count counts distinct users who ever joined.
		if room, _ := e.store.RoomByID(ctx, roomID); room.LookCount != 2 {
			t.Fatalf("look_count %d, want 2", room.LookCount)
		}
	})
}

// TestRoomRefusals sends bad input: each gets a clear errno and nothing is
// stored.
func TestRoomRefusals(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.Limits.Comments = rpc.Rate{Every: time.Hour, Burst: 3}
	})
	ctx := context.Background()
	_, roomID, name := e.liveRoom("alice", "")
	bobTok, bobID := e.register("bob")
	if _, err := e.store.AddCoins(ctx, bobID, 3); err != nil {
		t.Fatal(err)
	}
	bob := e.dialWS(bobTok, false)

	if r := e.call(bobTok, "Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1011 {
		t.Fatalf("join over HTTP POST: errno %d, want 1011", r.Errno)
	}
	if r := bob.call("Live.room.join", map[string]any{"room_id": 999}); r.Errno != 1007 {
		t.Fatalf("unknown room: errno %d", r.Errno)
	}
	if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "hi"}); r.Errno != 1014 {
		t.Fatalf("comment before joining: errno %d", r.Errno)
	}
	e.live.mu.Lock()
	delete(e.live.streams, name)
	e.live.mu.Unlock()
	if r := bob.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1012 {
		t.Fatalf("room not live: errno %d", r.Errno)
	}
	e.live.set(name, rpc.LiveStream{})
	if r := bob.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
		t.Fatalf("join: %+v", r)
	}
	for _, c := range []struct {
		method string
		params map[string]any
		errno  int
	}{
		{"Live.comment", map[string]any{"room_id": roomID, "content": "   "}, 1001},
		{"Live.comment", map[string]any{"room_id": roomID, "content": strings.Repeat("长", 201)}, 1001},
		{"Live.comment", map[string]any{"room_id": roomID, "content": "bell\a"}, 1001},
		{"Live.gift", map[string]any{"room_id": roomID, "gift_id": 999}, 1015},
		{"Live.gift", map[string]any{"room_id": roomID, "gift_id": 1, "count": -2}, 1001},
		{"Live.gift", map[string]any{"room_id": roomID, "gift_id": 1, "count": 10000}, 1001},
		{"Live.gift", map[string]any{"room_id": roomID, "gift_id": 3}, 1016}, // a rocket costs 100
		{"User.coin.recharge", map[string]any{"amount": 50}, 1006},           // not allowed on this server
	} {
		if r := bob.call(c.method, c.params); r.Errno != c.errno {
			t.Errorf("%s %v: errno %d, want %d", c.method, c.params, r.Errno, c.errno)
		}
	}
	for _, bad := range []map[string]any{{"room_id": roomID}, {"room_id": roomID, "content": 5}} {
		if r := <-bob.send("Live.comment", bad); r.Error == nil || r.Error.Code != -32602 {
			t.Errorf("Live.comment %v: %+v, want -32602", bad, r)
		}
	}
	// Spam: the fourth comment within the hour is refused.
	for i := range 4 {
		want := 1000
		if i == 3 {
			want = 1003
		}
		if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": fmt.Sprint("spam ", i)}); r.Errno != want {
			t.Fatalf("comment %d: errno %d, want %d", i, r.Errno, want)
		}
	}
	cs, total, err := e.store.Comments(ctx, roomID, 0, 10)
	if err != nil || total != 3 || len(cs) != 3 {
		t.Fatalf("stored comments: %d (%v), want the 3 accepted", total, err)
	}
	if u, _ := e.store.UserByID(ctx, bobID); u.Coin != 3 {
		t.Fatalf("refused gifts changed bob's coins to %d", u.Coin)
	}
	var gifts int
	e.store.DB().Get(&gifts, "SELECT COUNT(*) FROM mf_live_gift")
	if gifts != 0 {
		t.Fatalf("%d gift records after refused gifts", gifts)
	}
	// A binary message is refused by closing the socket.
	if err := bob.c.Write(ctx, 2, []byte{1, 2, 3}); err != nil {
		t.Fatalf("sending a binary message: %v", err)
	}
	select {
	case <-bob.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a binary message did not close the socket")
	}
}

// TestRoomsPerSocket caps the rooms one websocket may be in.
func TestRoomsPerSocket(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Limits.RoomsPerSocket = 2 })
	var rooms []int64
	for _, owner := range []string{"ann", "ben", "cat"} {
		_, id, _ := e.liveRoom(owner, "")
		rooms = append(rooms, id)
	}
	tok, _ := e.register("viewer")
	v := e.dialWS(tok, false)
	for i, id := range rooms {
		want := 1000
		if i == 2 {
			want = 1013
		}
		if r := v.call("Live.room.join", map[string]any{"room_id": id}); r.Errno != want {
			t.Fatalf("join room %d: errno %d, want %d", i, r.Errno, want)
		}
	}
}

// TestGiftRace fires 1,000 gifts at once from 50 users who can afford
// only some of them: coins add up exactly, none go negative, and every
// accepted gift has exactly one record.
func TestGiftRace(t *testing.T) {
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			e := newEnvWith(t, dialect, func(c *rpc.Config) {
				c.Limits.Gifts = rpc.Rate{Burst: -1}  // no rate limit: race as hard as possible
				c.Auth.Register = rpc.Rate{Burst: -1} // 51 accounts from one address
			})
			ctx := context.Background()
			_, roomID, _ := e.liveRoom("streamer", "")
			const users, each, price, coins = 50, 20, 5, 33 // each can afford 6 of 20
			type sender struct {
				id int64
				ws *wsClient
			}
			var senders []sender
			for i := range users {
				tok, id := e.register(fmt.Sprintf("fan%02d", i))
				if _, err := e.store.AddCoins(ctx, id, coins); err != nil {
					t.Fatal(err)
				}
				ws := e.dialWS(tok, false)
				if r := ws.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
					t.Fatalf("join: %+v", r)
				}
				senders = append(senders, sender{id, ws})
			}
			before := sumCoins(t, e)

			var mu sync.Mutex
			accepted, refused := 0, 0
			var wg sync.WaitGroup
			for _, s := range senders {
				chans := make([]chan response, each)
				for k := range each {
					chans[k] = s.ws.send("Live.gift", map[string]any{"room_id": roomID, "gift_id": 2})
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, ch := range chans {
						r := s.ws.await("Live.gift", ch)
						mu.Lock()
						switch r.Errno {
						case 1000:
							accepted++
						case 1016:
							refused++
						default:
							t.Errorf("gift: errno %d %s", r.Errno, r.Errmsg)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()

			if want := users * (coins / price); accepted != want || refused != users*each-want {
				t.Fatalf("accepted %d, refused %d; want %d and %d", accepted, refused, want, users*each-want)
			}
			if after := sumCoins(t, e); after != before {
				t.Fatalf("users' coins add up to %d after, %d before", after, before)
			}
			var negative, records, recordCoins, roomCoins int64
			db := e.store.DB()
			db.Get(&negative, "SELECT COUNT(*) FROM mf_user WHERE coin < 0")
			db.Get(&records, "SELECT COUNT(*) FROM mf_live_gift")
			db.Get(&recordCoins, "SELECT COALESCE(SUM(coin), 0) FROM mf_live_gift")
			db.Get(&roomCoins, "SELECT coin FROM mf_live_stream WHERE id = ?", roomID)
			owner, _ := e.store.UserByID(ctx, 1)
			if negative != 0 || records != int64(accepted) || recordCoins != int64(accepted*price) ||
				roomCoins != recordCoins || owner.Coin != recordCoins {
				t.Fatalf("negative %d, records %d (coins %d), room %d, owner %d; accepted %d", negative, records, recordCoins, roomCoins, owner.Coin, accepted)
			}
			for _, s := range senders {
				u, _ := e.store.UserByID(ctx, s.id)
				if u.Coin != coins%price {
					t.Fatalf("fan %d has %d coins left, want %d", s.id, u.Coin, coins%price)
				}
			}
		})
	}
}

func sumCoins(t *testing.T, e *env) int64 {
	t.Helper()
	var sum int64
	if err := e.store.DB().Get(&sum, "SELECT COALESCE(SUM(coin), 0) FROM mf_user"); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestRecharge lets admins, and everyone when the server allows it, add
// coins.
func TestRecharge(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.AllowRecharge = true })
	tok, id := e.register("dev")
	r := e.call(tok, "User.coin.recharge", map[string]any{"amount": 500})
	if r.Errno != 1000 || r.Data["coin"] != float64(500) {
		t.Fatalf("recharge: %+v", r)
	}
	if r := e.call(tok, "User.coin.recharge", map[string]any{"amount": 5, "user_id": id + 1}); r.Errno != 1006 {
		t.Fatalf("recharging someone else as a non-admin: errno %d", r.Errno)
	}
	if r := e.call(tok, "User.coin.recharge", map[string]any{"amount": 0}); r.Errno != 1001 {
		t.Fatalf("zero amount: errno %d", r.Errno)
	}
}
