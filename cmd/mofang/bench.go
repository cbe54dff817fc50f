package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mofang-live/mofang/store"
)

// benchCommand runs the project's load benchmarks.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: mofang bench rpc|room|rooms|fanout|hls|webrtc|cluster [flags]")
	}
	switch args[0] {
	case "rpc":
		return benchRPC(ctx, args[1:], stdout, stderr)
	case "room":
		return benchRoom(ctx, args[1:], stdout, stderr)
	case "fanout":
		return benchFanout(ctx, args[1:], stdout, stderr)
	case "hls":
		return benchHLS(ctx, args[1:], stdout, stderr)
	case "webrtc":
		return benchWebRTC(ctx, args[1:], stdout, stderr)
	case "cluster":
		return benchCluster(ctx, args[1:], stdout, stderr)
	case "rooms":
		return benchRooms(ctx, args[1:], stdout, stderr)
	case "raw-server":
		return rawServer(ctx, args[1:])
	}
	return fmt.Errorf("unknown benchmark %q", args[0])
}

// rawBody is what the raw handler answers: the size of a Server.ping
// response, so that (a) and (b) move the same bytes.
const rawBody = `{"jsonrpc":"2.0","id":1,"result":{"errno":1000,"errmsg":"ok","data":{"time":1700000000000}}}`

// rawServer serves a fixed JSON body with plain net/http: the baseline.
func rawServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("raw-server", flag.ContinueOnError)
	addr := fs.String("http", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(rawBody)))
		w.Write([]byte(rawBody))
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// benchRPC measures requests per second and latency of the API against a
// raw net/http handler, each server pinned to CPU 0 and the load (wrk, 64
// keep-alive connections) to CPU 1.
func benchRPC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench rpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Second, "measuring time of each scenario")
	conns := fs.Int("connections", 64, "concurrent keep-alive connections")
	rooms := fs.Int("rooms", 1000, "rooms in the database for Live.stream.list")
	mysqlDSN := fs.String("mysql", envOr("MOFANG_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test"), "MySQL server to create a bench database on (empty: skip MySQL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench rpc needs %s (apt-get install -y wrk util-linux)", tool)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mofang-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	type scenario struct {
		name   string
		server []string // args of self
		dsn    string   // database to seed, if any
		body   string
		auth   bool
	}
	ping := `{"jsonrpc":"2.0","id":1,"method":"Server.ping","params":{}}`
	list := `{"jsonrpc":"2.0","id":1,"method":"Live.stream.list","params":{"page":1,"size":20}}`
	sqliteDSN := "sqlite:" + filepath.Join(dir, "bench.db")
	scenarios := []scenario{
		{name: "(a) raw net/http, fixed JSON", server: []string{"bench", "raw-server"}, body: ping},
		{name: "(b) JSON-RPC Server.ping", server: []string{"serve"}, dsn: sqliteDSN, body: ping},
		{name: fmt.Sprintf("(c) Live.stream.list page of 20 of %d rooms, SQLite", *rooms), server: []string{"serve"}, dsn: sqliteDSN, body: list, auth: true},
	}
	if *mysqlDSN != "" {
		dsn, drop, err := benchMySQL(ctx, *mysqlDSN)
		if err != nil {
			return err
		}
		defer drop()
		scenarios = append(scenarios, scenario{name: fmt.Sprintf("(c) Live.stream.list page of 20 of %d rooms, MariaDB", *rooms), server: []string{"serve"}, dsn: dsn, body: list, auth: true})
	}

	fmt.Fprintf(stdout, "mofang bench rpc: server on CPU 0, wrk on CPU 1, %d connections, %v per scenario\n\n", *conns, *duration)
	fmt.Fprintf(stdout, "%-58s %10s %9s %9s %7s\n", "scenario", "req/s", "p50", "p99", "ratio")
	var base float64
	seeded := map[string]bool{}
	for _, sc := range scenarios {
		if sc.dsn != "" && !seeded[sc.dsn] {
			if err := seedRooms(ctx, sc.dsn, *rooms); err != nil {
				return fmt.Errorf("seeding %s: %w", sc.name, err)
			}
			seeded[sc.dsn] = true
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		srvArgs := append([]string{"-c", "0", self}, sc.server...)
		srvArgs = append(srvArgs, "--http", addr)
		if sc.server[0] == "serve" {
			srvArgs = append(srvArgs, "--db", sc.dsn, "--data", dir, "--log-level", "error",
				"--rtmp", "127.0.0.1:0", "--rtsp", "", "--rtsp-udp", "", "--srt-addr", "")
		}
		srv := exec.CommandContext(ctx, "taskset", srvArgs...)
		srv.Stderr = stderr
		if err := srv.Start(); err != nil {
			return fmt.Errorf("starting server: %w", err)
		}
		res, err := func() (wrkResult, error) {
			defer func() {
				srv.Process.Signal(os.Interrupt)
				srv.Wait()
			}()
			if err := waitListening(ctx, addr); err != nil {
				return wrkResult{}, err
			}
			auth := ""
			if sc.auth {
				if auth, err = benchLogin(addr); err != nil {
					return wrkResult{}, err
				}
			}
			if err := checkOK(addr, sc.body, auth); err != nil {
				return wrkResult{}, err
			}
			script := filepath.Join(dir, "post.lua")
			if err := writeWrkScript(script, sc.body, auth); err != nil {
				return wrkResult{}, err
			}
			if _, err := runWrk(ctx, addr, script, *conns, 2*time.Second); err != nil { // warm-up
				return wrkResult{}, err
			}
			return runWrk(ctx, addr, script, *conns, *duration)
		}()
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		if base == 0 {
			base = res.rps
		}
		fmt.Fprintf(stdout, "%-58s %10.0f %9s %9s %7.2f\n", sc.name, res.rps, res.p50, res.p99, res.rps/base)
	}
	return nil
}

// seedRooms makes n users with a room each, and the user "bench".
func seedRooms(ctx context.Context, dsn string, n int) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	for i := range n {
		u, err := st.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("bench%05d", i), PasswordHash: "-", Nickname: fmt.Sprintf("Streamer %d", i)})
		if err != nil {
			return err
		}
		if _, err := st.CreateRoom(ctx, store.NewRoom{Name: fmt.Sprintf("room_bench_%05d", i), RoomName: fmt.Sprintf("Room %d", i), UserID: u.ID}); err != nil {
			return err
		}
	}
	return nil
}

// benchMySQL creates a scratch database on the server and returns its DSN
// and a function that drops it.
func benchMySQL(ctx context.Context, base string) (string, func(), error) {
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(base, "mysql://"))
	if err != nil {
		return "", nil, fmt.Errorf("mysql dsn: %w", err)
	}
	name := fmt.Sprintf("mofang_bench_%d", time.Now().UnixNano())
	st, err := store.Open(ctx, "mysql://"+cfg.FormatDSN())
	if err != nil {
		return "", nil, err
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating bench database: %w", err)
	}
	drop := func() {
		if st, err := store.Open(context.Background(), "mysql://"+cfg.FormatDSN()); err == nil {
			st.DB().Exec("DROP DATABASE " + name)
			st.Close()
		}
	}
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN(), drop, nil
}

// benchLogin registers a user on the server and returns its Authorization.
func benchLogin(addr string) (string, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"User.register","params":{"username":"bench_viewer","password":"bench-password"}}`
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Result struct {
			Errno int `json:"errno"`
			Data  struct {
				AccessToken string `json:"access_token"`
			} `json:"data"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Result.Errno != 1000 {
		return "", fmt.Errorf("registering the bench user: errno %d, %v", r.Result.Errno, err)
	}
	return "jwt " + r.Result.Data.AccessToken, nil
}

// checkOK makes one call and checks it succeeds, so that the benchmark
// never measures errors.
func checkOK(addr, body, auth string) error {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"errno":1000`)) {
		return fmt.Errorf("probe call failed: HTTP %d %.200s", resp.StatusCode, b)
	}
	return nil
}

func writeWrkScript(path, body, auth string) error {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	script := "wrk.method = \"POST\"\nwrk.body = " + q(body) + "\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
	if auth != "" {
		script += "wrk.headers[\"Authorization\"] = " + q(auth) + "\n"
	}
	return os.WriteFile(path, []byte(script), 0o600)
}

type wrkResult struct {
	rps      float64
	p50, p99 string
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\S+)`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// runWrk runs wrk on CPU 1 against addr and reads its summary.
func runWrk(ctx context.Context, addr, script string, conns int, d time.Duration) (wrkResult, error) {
	secs := strconv.Itoa(int(d.Seconds()))
	cmd := exec.CommandContext(ctx, "taskset", "-c", "1", "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+secs+"s",
		"--latency", "-s", script, "http://"+addr+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if m := wrkErrors.Find(out); m != nil {
		return wrkResult{}, fmt.Errorf("wrk saw errors: %s", m)
	}
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec: %s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, l := range wrkLatency.FindAllSubmatch(out, -1) {
		if string(l[1]) == "50" {
			r.p50 = string(l[2])
		} else {
			r.p99 = string(l[2])
		}
	}
	return r, nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("server at %s did not start", addr)
}
