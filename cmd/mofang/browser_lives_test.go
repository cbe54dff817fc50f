package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserHostStats in headless Chromium: a host makes a room through
// the pages and goes live (ffmpeg with the shown settings); a fan plays it
// (ffmpeg over HTTP-FLV) and sends gifts over a websocket. The live room's
// board shows the fan's coins and follows the next gift by itself (the
// "rank" event); "My lives" lists the live with its coins and draws its
// viewers over time: an SVG line with a point per sample.
func TestBrowserHostStats(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort),
		"--public-host", "127.0.0.1", "--allow-recharge", "--live-sample-interval", "300ms")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	os.Remove(filepath.Join(shots, "failed-host.png"))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	host := startBrowser(t, ctx, chromium, shots)("host", nil)
	host.register(site, "hoster", "Hoster")
	host.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	host.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	host.do("create the room", chromedp.SetValue("#room-name", "Stats live", chromedp.ByQuery), chromedp.Click("#room-save", chromedp.ByQuery))
	host.wait("OBS settings", 10*time.Second, `document.querySelector('#obs-url')`)
	host.wait("no lives yet", 10*time.Second, `document.querySelector('#lives') && !document.querySelector('#lives .live-item')`)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", host.text(`document.querySelector('#obs-url').value`))

	// The fan finds the room live, plays it and gives 100 coins.
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "fan", "password": "fan-password", "nickname": "Big Fan"})
	fanTok := reg["data"].(map[string]any)["access_token"].(string)
	rpcCall(t, api, fanTok, "User.coin.recharge", map[string]any{"amount": 1000})
	var roomID int64
	eventually(t, 20*time.Second, "the room live", func() bool {
		var list struct {
			Items []struct {
				ID       int64  `json:"id"`
				RoomName string `json:"room_name"`
				Status   bool   `json:"status"`
			} `json:"stream_list"`
		}
		b, _ := json.Marshal(rpcCall(t, api, fanTok, "Live.stream.list", map[string]any{}))
		json.Unmarshal(b, &list)
		for _, it := range list.Items {
			if it.RoomName == "Stats live" && it.Status {
				roomID = it.ID
			}
		}
		return roomID != 0
	})
	read := rpcCall(t, api, fanTok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)
	startFFmpeg(t, "-i", read["play"].(map[string]any)["flv"].(string), "-c", "copy", "-f", "null", "-")
	fan := dialPeer(t, api, fanTok)
	fan.call("Live.room.join", map[string]any{"room_id": roomID})
	fan.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 3}) // a rocket: 100

	// The host's live room: the board shows the fan, then follows a gift.
	host.do("open the live room", chromedp.Navigate(fmt.Sprintf("%s#/room/%d", site, roomID)))
	board := `document.querySelector('#rank-list .rank-1')`
	host.wait("the fan first on the board", 20*time.Second, board+` && `+board+`.textContent.includes('Big Fan') && `+board+`.textContent.includes('100')`)
	host.wait("joined the room", 20*time.Second, `document.querySelector('#online-list li')`)
	fan.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 2}) // a heart: 5 more
	host.wait("the board after the next gift", 10*time.Second, board+`.textContent.includes('105')`)
	host.screenshot("room-rank.png")

	// My lives: the live, its coins, and its chart once there are samples.
	host.do("open my room", chromedp.Navigate(site+"#/me"))
	host.wait("the live listed", 15*time.Second, `document.querySelector('#lives .live-item[data-live="1"]')`)
	if got := host.text(`document.querySelector('#lives .live-item .live-coins').textContent`); !strings.Contains(got, "105 coins") {
		t.Fatalf("the live's coins: %q", got)
	}
	host.wait("a chart with points", 15*time.Second,
		`(s => s && s.querySelectorAll('circle.chart-point').length >= 2 && s.querySelector('polyline.chart-line').getAttribute('points').split(' ').length >= 2)(document.querySelector('#lives svg.viewer-chart'))`)
	// The chart's scale is its peak: the fan was counted in a sample.
	var peak int
	host.do("read the chart's scale", chromedp.Evaluate(`Number(document.querySelectorAll('#lives svg.viewer-chart .chart-label')[1].textContent)`, &peak))
	if peak < 1 {
		t.Fatalf("chart peak %d: no sample counted the viewer", peak)
	}
	host.do("show the chart", chromedp.ScrollIntoView("#lives", chromedp.ByQuery))
	host.screenshot("my-lives.png")
	// The page an admin opens for any room (the host may too).
	host.do("open the room's lives page", chromedp.Navigate(fmt.Sprintf("%s#/lives/%d", site, roomID)))
	host.wait("the lives page's chart", 15*time.Second, `document.querySelectorAll('.page-lives svg.viewer-chart circle.chart-point').length >= 2`)
	if errs := host.pageErrors(); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}
