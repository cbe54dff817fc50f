package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// nmsSecret is the auth secret of seed 001's Node-Media-Server config.
const nmsSecret = "nodemedia2017privatekey"

// nmsPeer is a Node-Media-Server 2 process pinned to CPU 0, configured as
// seed 001 configures it (GOP cache on, auth on for play and publish)
// on free loopback ports.
type nmsPeer struct {
	rtmp, http string // host:port
	version    string
	cmd        *exec.Cmd
}

// startNMS starts Node-Media-Server from dir (which holds
// node_modules/node-media-server), writing its start script in tmp.
func startNMS(ctx context.Context, dir, tmp string, stderr io.Writer) (*nmsPeer, error) {
	modDir, err := filepath.Abs(filepath.Join(dir, "node_modules", "node-media-server"))
	if err != nil {
		return nil, err
	}
	pkg, err := os.ReadFile(filepath.Join(modDir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("node-media-server not found in %s (npm install node-media-server@2.7.4 there): %w", dir, err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(pkg, &meta); err != nil {
		return nil, fmt.Errorf("node-media-server package.json: %w", err)
	}
	p := &nmsPeer{version: meta.Version}
	if p.rtmp, err = freeAddr(); err != nil {
		return nil, err
	}
	if p.http, err = freeAddr(); err != nil {
		return nil, err
	}
	port := func(addr string) string { return addr[len("127.0.0.1:"):] }
	script := fmt.Sprintf(`const NodeMediaServer = require(%q);
const nms = new NodeMediaServer({
  logType: 1,
  rtmp: { port: %s, host: '127.0.0.1', chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
  http: { port: %s, host: '127.0.0.1', allow_origin: '*' },
  auth: { play: true, publish: true, secret: %q },
});
nms.run();
`, modDir, port(p.rtmp), port(p.http), nmsSecret)
	app := filepath.Join(tmp, "nms-app.js")
	if err := os.WriteFile(app, []byte(script), 0o600); err != nil {
		return nil, err
	}
	p.cmd = exec.CommandContext(ctx, "taskset", "-c", "0", "node", app)
	p.cmd.Stdout, p.cmd.Stderr = stderr, stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting Node-Media-Server: %w", err)
	}
	if err := waitListening(ctx, p.rtmp); err != nil {
		p.close()
		return nil, fmt.Errorf("Node-Media-Server: %w", err)
	}
	if err := waitListening(ctx, p.http); err != nil {
		p.close()
		return nil, fmt.Errorf("Node-Media-Server: %w", err)
	}
	return p, nil
}

// sign is Node-Media-Server 2's auth query for a stream path
// ("/live/bench"): sign=<expiry>-<md5(path-expiry-secret)>.
func (p *nmsPeer) sign(path string) string {
	exp := strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)
	sum := md5.Sum([]byte(path + "-" + exp + "-" + nmsSecret))
	return "sign=" + exp + "-" + hex.EncodeToString(sum[:])
}

// pid is the peer's process id.
func (p *nmsPeer) pid() int { return p.cmd.Process.Pid }

// close stops the peer.
func (p *nmsPeer) close() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill() //nolint:errcheck
		p.cmd.Wait()         //nolint:errcheck
	}
}
