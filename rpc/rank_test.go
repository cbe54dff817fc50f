package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
)

// rankReply is the data of Live.rank.
type rankReply struct {
	Errno int `json:"errno"`
	Data  struct {
		Scope     string `json:"scope"`
		SessionID int64  `json:"session_id"`
		Live      bool   `json:"live"`
		Ranks     []struct {
			Rank     int    `json:"rank"`
			UserID   int64  `json:"user_id"`
			Nickname string `json:"nickname"`
			Coins    int64  `json:"coins"`
			Gifts    int64  `json:"gifts"`
		} `json:"ranks"`
	} `json:"data"`
}

// TestRankRace fires 1,000 gifts at once, from 50 users with different
// budgets, at a live room: Live.rank of both scopes lists every sender
// once, in order of coins, with exactly the coins of their gift records
// (of the live for "live", of all time for "all", which also holds a gift
// sent before the live).
func TestRankRace(t *testing.T) {
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			e := newEnvWith(t, dialect, func(c *rpc.Config) {
				c.Limits.Gifts = rpc.Rate{Burst: -1}
				c.Auth.Register = rpc.Rate{Burst: -1}
				// 50 gifts at a time wait in turn for the database's
				// writer: on a machine under load (the race detector,
				// the rest of the suite, a host taking CPU) the last
				// ones wait longer than the default 5 s.
				c.CallTimeout = time.Minute
			})
			ctx := context.Background()
			ownerTok, roomID, _ := e.liveRoom("streamer", "")
			const users, each, price = 50, 20, 5
			type sender struct {
				id int64
				ws *wsClient
			}
			var senders []sender
			for i := range users {
				tok, id := e.register(fmt.Sprintf("fan%02d", i))
				// fan i can afford i%15+1 hearts (some all 20, most fewer).
				if _, err := e.store.AddCoins(ctx, id, int64(price*(i%15+1))+1); err != nil {
					t.Fatal(err)
				}
				ws := e.dialWS(tok, false)
				if r := ws.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
					t.Fatalf("join: %+v", r)
				}
				senders = append(senders, sender{id, ws})
			}
			// One flower before the live: all-time only.
			if r := senders[0].ws.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 1}); r.Errno != 1000 {
				t.Fatalf("gift before the live: %+v", r)
			}
			sessionID, _, err := e.store.StartSession(ctx, roomID)
			if err != nil {
				t.Fatal(err)
			}
			var fromSession int64
			e.store.DB().Get(&fromSession, "SELECT COALESCE(MAX(id), 0) FROM mf_live_gift")

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
						if r := s.ws.await("Live.gift", ch); r.Errno != 1000 && r.Errno != 1016 {
							t.Errorf("gift: errno %d %s", r.Errno, r.Errmsg)
						}
					}
				}()
			}
			wg.Wait()

			for _, scope := range []string{"live", "all"} {
				var want []struct {
					User  int64 `db:"user_id"`
					Coins int64 `db:"coins"`
					Gifts int64 `db:"gifts"`
				}
				q := "SELECT user_id, SUM(coin) AS coins, SUM(count) AS gifts FROM mf_live_gift WHERE room_id = ?"
				args := []any{roomID}
				if scope == "live" {
					q += " AND id > ?"
					args = append(args, fromSession)
				}
				if err := e.store.DB().Select(&want, e.store.DB().Rebind(q+" GROUP BY user_id"), args...); err != nil {
					t.Fatal(err)
				}
				byUser := map[int64][2]int64{}
				for _, w := range want {
					byUser[w.User] = [2]int64{w.Coins, w.Gifts}
				}
				var got rankReply
				e.callInto(ownerTok, "Live.rank", map[string]any{"room_id": roomID, "scope": scope, "limit": 100}, &got)
				if got.Errno != 1000 || len(got.Data.Ranks) != len(want) || len(want) != users {
					t.Fatalf("%s: errno %d, %d ranked, %d senders in the records", scope, got.Errno, len(got.Data.Ranks), len(want))
				}
				if scope == "live" && (got.Data.SessionID != sessionID || !got.Data.Live) {
					t.Fatalf("live: session %d (live %v), want %d", got.Data.SessionID, got.Data.Live, sessionID)
				}
				var sum, records int64
				for i, r := range got.Data.Ranks {
					w := byUser[r.UserID]
					if r.Coins != w[0] || r.Gifts != w[1] || r.Rank != i+1 {
						t.Fatalf("%s: place %d = %+v, records say %d coins, %d gifts", scope, i, r, w[0], w[1])
					}
					if i > 0 && r.Coins > got.Data.Ranks[i-1].Coins {
						t.Fatalf("%s: place %d has more coins than place %d", scope, i+1, i)
					}
					sum += r.Coins
					delete(byUser, r.UserID)
				}
				e.store.DB().Get(&records, e.store.DB().Rebind("SELECT COALESCE(SUM(coin), 0) FROM mf_live_gift WHERE room_id = ?"), roomID)
				if scope == "all" && sum != records {
					t.Fatalf("all: ranking sums to %d, records to %d", sum, records)
				}
			}
			var sess struct {
				Errno int `json:"errno"`
				Data  struct {
					Coins int64 `json:"coins"`
					Gifts int64 `json:"gifts"`
				} `json:"data"`
			}
			e.callInto(ownerTok, "Live.session.read", map[string]any{"session_id": sessionID}, &sess)
			var coins, gifts int64
			e.store.DB().Get(&coins, e.store.DB().Rebind("SELECT COALESCE(SUM(coin), 0) FROM mf_live_gift WHERE id > ?"), fromSession)
			e.store.DB().Get(&gifts, e.store.DB().Rebind("SELECT COALESCE(SUM(count), 0) FROM mf_live_gift WHERE id > ?"), fromSession)
			if sess.Errno != 1000 || sess.Data.Coins != coins || sess.Data.Gifts != gifts {
				t.Fatalf("session: %+v, records: %d coins, %d gifts", sess, coins, gifts)
			}
		})
	}
}

// TestRankEvent: a viewer in the room gets a "rank" event, with the new
// top three of both scopes, after each gift that changes one (a newcomer,
// a pass, more coins for one of the three), and none after a gift that
// leaves both as they were.
func TestRankEvent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, roomID, _ := e.liveRoom("host", "")
		if _, _, err := e.store.StartSession(ctx, roomID); err != nil {
			t.Fatal(err)
		}
		viewerTok, _ := e.register("viewer")
		viewer := e.dialWS(viewerTok, false)
		if r := viewer.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
		var fans []*wsClient
		for i := range 4 {
			tok, id := e.register(fmt.Sprintf("fan%d", i))
			e.store.AddCoins(ctx, id, 10000)
			ws := e.dialWS(tok, false)
			if r := ws.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
				t.Fatalf("join: %+v", r)
			}
			fans = append(fans, ws)
		}
		skip := []string{"join", "leave", "online"}
		gift := func(i int, giftID int64) {
			t.Helper()
			if r := fans[i].call("Live.gift", map[string]any{"room_id": roomID, "gift_id": giftID}); r.Errno != 1000 {
				t.Fatalf("gift: %+v", r)
			}
			if ev := viewer.next(skip...); ev.Type != "gift" {
				t.Fatalf("want the gift event first, got %+v", ev)
			}
		}
		top := func(want ...int64) {
			t.Helper()
			ev := viewer.next(skip...)
			if ev.Type != "rank" || ev.Rank == nil || len(ev.Rank.Live) != len(want) || len(ev.Rank.All) != len(want) {
				t.Fatalf("want a rank event with %d places, got %+v", len(want), ev)
			}
			for i, c := range want {
				if ev.Rank.Live[i].Rank != i+1 || ev.Rank.Live[i].Coins != c || ev.Rank.All[i].Coins != c {
					b, _ := json.Marshal(ev.Rank)
					t.Fatalf("place %d: want %d coins, got %s", i+1, c, b)
				}
			}
		}
		gift(0, 3) // fan0 100
		top(100)
		gift(1, 2) // fan1 5
		top(100, 5)
		gift(2, 1) // fan2 1
		top(100, 5, 1)
		gift(3, 1) // fan3 1: ties fan2 but fan2 got there first
		viewer.quiet(300*time.Millisecond, skip...)
		gift(3, 2) // fan3 6: passes fan1
		top(100, 6, 5)
		gift(2, 1) // fan2 2: still 4th
		viewer.quiet(300*time.Millisecond, skip...)
	})
}

// TestSessionAccess: the lives of a room are for its owner and admins;
// anyone else is refused, and an unknown session says so.
func TestSessionAccess(t *testing.T) {
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	ownerTok, roomID, _ := e.liveRoom("host", "")
	sid, _, err := e.store.StartSession(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _ := e.register("other")
	adminTok, adminID := e.register("boss")
	if err := e.store.SetAdmin(ctx, adminID, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tok  string
		want int
	}{{ownerTok, 1000}, {adminTok, 1000}, {otherTok, 1006}} {
		if r := e.call(c.tok, "Live.session.list", map[string]any{"room_id": roomID}); r.Errno != c.want {
			t.Fatalf("list: errno %d, want %d", r.Errno, c.want)
		}
		r := e.call(c.tok, "Live.session.read", map[string]any{"session_id": sid})
		if r.Errno != c.want {
			t.Fatalf("read: errno %d, want %d", r.Errno, c.want)
		}
		if c.want == 1000 && (r.Data["live"] != true || r.Data["samples"] == nil) {
			t.Fatalf("read: %+v", r.Data)
		}
	}
	if r := e.call(ownerTok, "Live.session.read", map[string]any{"session_id": sid + 100}); r.Errno != 1045 {
		t.Fatalf("unknown session: errno %d", r.Errno)
	}
	if r := e.call(ownerTok, "Live.rank", map[string]any{"room_id": roomID, "scope": "week"}); r.Errno != 1001 {
		t.Fatalf("unknown scope: errno %d", r.Errno)
	}
}
