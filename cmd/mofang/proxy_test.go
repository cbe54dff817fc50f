package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// nginxConf is the configuration README gives for nginx in front of
// MoFang Live (listen and upstream addresses filled in by the test).
const nginxConf = `worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    upstream mofang {
        server %[3]s;
        keepalive 32;
    }
    server {
        listen %[2]s;
        client_max_body_size 1m;

        # API (POST /), pages, websockets (GET / with Upgrade), WHIP/WHEP
        location / {
            proxy_pass http://mofang;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
        # HTTP-FLV and HLS: no buffering, so that media flows as it is made;
        # long timeouts for HTTP-FLV and HLS's blocking playlist reloads.
        location /live/ {
            proxy_pass http://mofang;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Connection "";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
`

// startNginx runs nginx on listen in front of upstream until the test
// ends.
func startNginx(t *testing.T, listen, upstream string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, err := os.Stat(nginx); err != nil {
			t.Fatal("nginx is required (.ci/setup.sh installs it)")
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(fmt.Sprintf(nginxConf, dir, listen, upstream)), 0o600); err != nil {
		t.Fatal(err)
	}
	// -e: the startup error log before the config's error_log applies.
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	// Its own process group: the workers go with the master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", b)
		}
	})
	eventually(t, 10*time.Second, "nginx listening", func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src (127.0.0.x): a client other than the proxy.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// flvViewerIP opens an HTTP-FLV read of stream at base with client (and
// header hdr) and returns the address Admin.client.list shows for it.
func flvViewerIP(t *testing.T, client *http.Client, base, stream, adminTok string, hdr http.Header) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"live/"+stream+".flv", nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP-FLV: HTTP %d", resp.StatusCode)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "FLV" {
		t.Fatalf("HTTP-FLV body %q %v", buf, err)
	}
	go io.Copy(io.Discard, resp.Body)
	var ip string
	eventually(t, 5*time.Second, "HTTP-FLV viewer listed", func() bool {
		var r struct {
			Data struct {
				Clients []struct {
					IP       string `json:"ip"`
					Protocol string `json:"protocol"`
					Role     string `json:"role"`
				} `json:"clients"`
			} `json:"data"`
		}
		remarshal(t, rpcCall(t, base, adminTok, "Admin.client.list", map[string]any{}), &r)
		for _, c := range r.Data.Clients {
			if c.Protocol == "http-flv" && c.Role == "play" {
				ip = c.IP
				return true
			}
		}
		return false
	})
	cancel()
	// wait for it to leave, so that the next viewer is the only one
	eventually(t, 5*time.Second, "HTTP-FLV viewer gone", func() bool {
		b, _ := json.Marshal(rpcCall(t, base, adminTok, "Admin.client.list", map[string]any{}))
		return !strings.Contains(string(b), `"http-flv"`)
	})
	return ip
}

// TestBehindNginx runs Debian's nginx in front of the service with the
// README's configuration: FLV, HLS and the websocket work through it;
// with nginx trusted the service sees the real client's address, and a
// forged X-Forwarded-For from a direct, untrusted client changes nothing.
func TestBehindNginx(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	data := t.TempDir()
	// nginx connects to the service from 127.0.0.1; clients use other
	// loopback addresses.
	base, stop := startServe(t, data, "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--trusted-proxies", "127.0.0.1/32", "--conns-per-ip", "4")
	defer stop()
	upstream := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startNginx(t, front, upstream)
	proxied := "http://" + front + "/"

	reg := rpcCall(t, proxied, "", "User.register", map[string]any{"username": "proxied", "password": "proxied-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, proxied, tok, "Live.stream", map[string]any{"room_name": "behind nginx"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, proxied, tok, stream).Status })

	for what, u := range map[string]string{"FLV": proxied + "live/" + stream + ".flv", "HLS": proxied + "live/" + stream + "/index.m3u8"} {
		if got := probe(t, u); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe of %s through nginx sees %q", what, got)
		}
	}
	if r := wsCall(t, http.DefaultClient, "ws://"+front+"/?token="+tok, "Live.stream.list"); r["stream_list"] == nil {
		t.Fatalf("websocket through nginx: %v", r)
	}
	// More connections through nginx than conns-per-ip: the trusted
	// proxy is not capped as one address.
	for i := 0; i < 6; i++ {
		resp, err := clientFrom("127.0.0.1").Get(proxied + "healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	makeAdmin(t, data, "proxied")
	forged := http.Header{"X-Forwarded-For": {"203.0.113.66"}, "X-Real-Ip": {"203.0.113.67"}}
	if ip := flvViewerIP(t, clientFrom("127.0.0.3"), proxied, stream, tok, nil); ip != "127.0.0.3" {
		t.Fatalf("viewer through trusted nginx shown as %q, want its own address 127.0.0.3", ip)
	}
	// Through nginx with a forged header: nginx appends the real peer,
	// the rightmost untrusted address wins.
	if ip := flvViewerIP(t, clientFrom("127.0.0.4"), proxied, stream, tok, forged); ip != "127.0.0.4" {
		t.Fatalf("viewer with a forged header through nginx shown as %q, want 127.0.0.4", ip)
	}
	// Direct and untrusted: its headers are ignored.
	if ip := flvViewerIP(t, clientFrom("127.0.0.2"), base, stream, tok, forged); ip != "127.0.0.2" {
		t.Fatalf("direct untrusted viewer with a forged header shown as %q, want 127.0.0.2", ip)
	}
}

// proxyFront accepts on a loopback port and forwards each connection to
// target from source address src, starting with a PROXY header of
// version that names client as the source.
func proxyFront(t *testing.T, target, src string, version byte, client netip.AddrPort) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
				out, err := d.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(client), out.RemoteAddr())
				if _, err := h.WriteTo(out); err != nil {
					return
				}
				go func() { io.Copy(out, in); out.Close() }()
				io.Copy(in, out)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProxyProtocol publishes over RTMP through a PROXY protocol v1 and
// v2 header, and over RTSP (TCP) through a v2 header, from a trusted balancer: the room list shows the header's
// client address. The same header from an untrusted peer is not read:
// the publish is refused.
func TestProxyProtocol(t *testing.T) {
	needFFmpeg(t)
	rtmp, rtsp := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base, stop := startServe(t, t.TempDir(), "--rtmp", rtmp, "--rtsp", rtsp, "--public-host", "127.0.0.1", "--proxy-protocol-from", "127.0.0.5")
	defer stop()
	reg := rpcCall(t, base, "", "User.register", map[string]any{"username": "balanced", "password": "balanced-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "pp"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	path := "/live/" + stream + "?sign=" + room["publish"].(map[string]any)["sign"].(string)

	for _, c := range []struct {
		v     byte
		proto string
	}{{1, "rtmp"}, {2, "rtmp"}, {2, "rtsp"}} {
		v := c.v
		client := netip.MustParseAddrPort(fmt.Sprintf("198.51.100.%d:40000", 10+v))
		var pub *exec.Cmd
		if c.proto == "rtmp" {
			front := proxyFront(t, rtmp, "127.0.0.5", v, client)
			pub = startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", "rtmp://"+front+path)
		} else {
			client = netip.MustParseAddrPort("198.51.100.50:40000")
			front := proxyFront(t, rtsp, "127.0.0.5", v, client)
			pub = startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+front+path)
		}
		eventually(t, 15*time.Second, fmt.Sprintf("live over %s through a v%d header", c.proto, v), func() bool {
			st := roomState(t, base, tok, stream)
			return st.Status && st.User.IP == client.Addr().String()
		})
		pub.Process.Kill()
		pub.Wait()
		eventually(t, 20*time.Second, "publisher gone", func() bool { return !roomState(t, base, tok, stream).Status })
	}

	// From 127.0.0.6, not trusted: the header reaches RTMP as garbage.
	front := proxyFront(t, rtmp, "127.0.0.6", 1, netip.MustParseAddrPort("198.51.100.99:40000"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "3", "-c", "copy", "-f", "flv", "rtmp://"+front+path).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("publish with a PROXY header from an untrusted peer was not refused promptly (err %v): %s", err, out)
	}
	if st := roomState(t, base, tok, stream); st.Status {
		t.Fatalf("untrusted PROXY header: room live as %+v", st)
	}
}
