package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mofang-live/mofang/store"
)

// benchRoom measures the room event fan-out: one live room, N websocket
// subscribers, P of them commenting at a steady total rate. The server
// runs pinned to CPU 0; this process (the subscribers) and ffmpeg (the
// stream that makes the room live) run on CPU 1.
func benchRoom(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench room", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subs := fs.Int("subscribers", 5000, "websocket subscribers in the room")
	rate := fs.Int("rate", 200, "comments per second, from as many commenters (1 each per second)")
	duration := fs.Duration("duration", 10*time.Second, "measuring time")
	clipPath := fs.String("clip", "testdata/clip.mp4", "clip ffmpeg publishes to make the room live")
	debug := fs.String("debug-addr", "", "pprof address for the server, to profile it during the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate > *subs {
		return errors.New("bench room: more commenters than subscribers")
	}
	for _, tool := range []string{"ffmpeg", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench room needs %s", tool)
		}
	}
	if *debug == "" {
		// the memory after a collection is asked of the server's pprof
		addr, err := freeAddr()
		if err != nil {
			return fmt.Errorf("bench room: %w", err)
		}
		*debug = addr
	}
	srv, err := startBenchServer(ctx, stderr, *subs, "--debug-addr", *debug)
	if err != nil {
		return err
	}
	defer srv.close()
	room, err := srv.createRoom()
	if err != nil {
		return err
	}
	stopPublish, err := publish(ctx, *clipPath, room.Publish.URL)
	if err != nil {
		return err
	}
	defer stopPublish()
	// the room goes live on the first media: ffmpeg may take a while to
	// start on a busy machine
	if err := waitLiveFLV(ctx, "http://"+srv.http+"/live/"+room.StreamName+".flv"); err != nil {
		return fmt.Errorf("bench room: the room's stream: %w", err)
	}
	time.Sleep(time.Second)

	baseRSS, _ := procRSS(srv.pid())
	wsURL := "ws://" + srv.http + "/"
	join := []byte(`{"jsonrpc":"2.0","id":"join","method":"Live.room.join","params":{"room_id":"` + room.RoomID + `"}}`)
	reader, err := newSubReader()
	if err != nil {
		return err
	}
	defer reader.close()
	clients := make([]*benchSub, *subs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var dialErr atomic.Pointer[error]
	started := time.Now()
	for i := range *subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialSub(ctx, reader, wsURL, srv.token(srv.users[i]), join, i%50 == 0)
			if err != nil {
				dialErr.CompareAndSwap(nil, &err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if e := dialErr.Load(); e != nil {
		return fmt.Errorf("subscribing: %w", *e)
	}
	fmt.Fprintf(stdout, "mofang bench room: server on CPU 0, %d subscribers joined in %v\n", *subs, time.Since(started).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // let the collector and the scavenger settle
	idleRSS, _ := procRSS(srv.pid())
	fmt.Fprintf(stdout, "server RSS %.1f MiB idle with the room, %.1f MiB with %d subscribers: %.1f KiB per idle subscriber\n",
		float64(baseRSS)/(1<<20), float64(idleRSS)/(1<<20), *subs, float64(idleRSS-baseRSS)/1024/float64(*subs))
	// What an idle server holds: with nothing allocated, Go's next
	// collection comes within its 2-minute forced period, and the
	// scavenger then returns the joins' garbage to the system.
	if err := collect(ctx, *debug); err != nil {
		return fmt.Errorf("bench room: %w", err)
	}
	time.Sleep(5 * time.Second)
	collectedRSS, _ := procRSS(srv.pid())
	fmt.Fprintf(stdout, "after a collection (as an idle server's within 2 minutes): %.1f MiB, %.1f KiB per idle subscriber\n",
		float64(collectedRSS)/(1<<20), float64(collectedRSS-baseRSS)/1024/float64(*subs))

	// Commenters: the first `rate` subscribers, one comment a second each,
	// spread over the second.
	for _, c := range clients {
		c.reset()
	}
	cpu0, _ := procCPU(srv.pid())
	load0, _ := procCPU(os.Getpid())
	steal0, _ := stealTime()
	t0 := time.Now()
	sent := comment(ctx, clients[:*rate], room.RoomID, *duration)
	elapsed := time.Since(t0)
	cpu1, _ := procCPU(srv.pid())
	load1, _ := procCPU(os.Getpid())
	steal1, _ := stealTime()
	time.Sleep(200 * time.Millisecond)
	rss, _ := procRSS(srv.pid())

	var delivered int64
	var lat []time.Duration
	var closed int
	for _, c := range clients {
		d, l, gone := c.results()
		delivered += d
		lat = append(lat, l...)
		if gone {
			closed++
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	cpu := (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	// The subscribers' own CPU: near a full core, they are the limit of
	// the latency measured, not the server.
	loadCPU := (load1 - load0).Seconds() / elapsed.Seconds()
	fmt.Fprintf(stdout, "%d comments/s sent for %v: %.0f deliveries/s, latency p50 %v p99 %v (%d samples), server CPU %.0f%% of one core, RSS %.1f MiB, sockets closed %d; load side (this process) CPU %.0f%% of one core, machine load average %s, CPU stolen by the host %.0f%% of one core\n",
		int(float64(sent)/elapsed.Seconds()+0.5), elapsed.Round(time.Millisecond), float64(delivered)/elapsed.Seconds(),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), len(lat), cpu*100, float64(rss)/(1<<20), closed,
		loadCPU*100, loadAverage(), (steal1-steal0).Seconds()/elapsed.Seconds()*100)
	return nil
}

// comment has each of commenters send one comment a second to a room, the
// starts spread over the first second, for d; it returns how many were
// sent.
func comment(ctx context.Context, commenters []*benchSub, roomID string, d time.Duration) int64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, c := range commenters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / time.Duration(len(commenters)))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for n := 0; ; n++ {
				msg := `{"jsonrpc":"2.0","id":"c","method":"Live.comment","params":{"room_id":"` + roomID + `","content":"bench comment ` + strconv.Itoa(n) + `"}}`
				if c.write([]byte(msg)) == nil {
					sent.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return sent.Load()
}

// seedRoomUsers makes a room owner and n subscribers sharing one password
// hash, and returns their ids.
func seedRoomUsers(ctx context.Context, dsn string, n int) (int64, []int64, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return 0, nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.MinCost)
	if err != nil {
		return 0, nil, err
	}
	owner, err := st.CreateUser(ctx, store.NewUser{Name: "bench_owner", PasswordHash: string(hash), Nickname: "Owner"})
	if err != nil {
		return 0, nil, err
	}
	tx, err := st.DB().BeginTxx(ctx, nil)
	if err != nil {
		return 0, nil, err
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mf_user (name, password, nickname, created_time, updated_time) VALUES (?, ?, ?, ?, ?)`,
			fmt.Sprintf("sub%05d", i), string(hash), fmt.Sprintf("Viewer %d", i), now, now); err != nil {
			return 0, nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, err
	}
	var ids []int64
	if err := st.DB().SelectContext(ctx, &ids, `SELECT id FROM mf_user WHERE name LIKE 'sub%' ORDER BY id`); err != nil {
		return 0, nil, err
	}
	return owner.ID, ids, nil
}

func postJSON(url, tok, body string, out any) error {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "jwt "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// procRSS returns a process's resident memory in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("bad statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err
}

// procCPU returns the CPU time (user + system) a process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("bad stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz, nil
}

// stealTime returns the CPU time the virtual machine's host took from it
// (steal, all CPUs, from /proc/stat): a run on a machine whose host was
// busy measured less than the machine.
func stealTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("bad /proc/stat")
	}
	ticks, err := strconv.ParseInt(f[8], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / hz, err
}

// loadAverage returns the machine's 1-minute load average, as
// /proc/loadavg tells it ("?" when it cannot be read): a shared machine's
// load moves the latency measured.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// collect has the server at a pprof address run a garbage collection.
func collect(ctx context.Context, debugAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("collect: HTTP %d", resp.StatusCode)
	}
	return nil
}
