package gateway_test

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/netproxy"
	"go.uber.org/goleak"
	"nhooyr.io/websocket"
)

// TestMain fails the package if a test leaves a goroutine behind: a
// websocket watcher, a session, a proxy pump. The timer package that
// improbable's wrapper uses runs one goroutine for the whole process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/desertbit/timer.timerRoutine"))
}

func TestOrigins(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, func(c *gateway.Config) { c.AllowedOrigins = []string{"https://friend.example"} })
	own := "http://" + gw.addr
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{own, true},
		{"", true}, // not a browser: nothing to protect
		{"https://friend.example", true},
		{"https://evil.example", false},
		{"http://" + gw.addr + ".evil.example", false},
		{"null", false},
	} {
		c, resp, err := dialChat(t, gw.addr, tc.origin)
		if tc.ok {
			if err != nil {
				t.Errorf("websocket from %q: %v, want it accepted", tc.origin, err)
				continue
			}
			_ = c.conn.Close(websocket.StatusNormalClosure, "")
		} else if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("websocket from %q: %s, want 403", tc.origin, statusOf(resp, err))
		}

		if resp := grpcWebPost(t, gw.addr, tc.origin); (resp.StatusCode == http.StatusOK) != tc.ok ||
			(!tc.ok && resp.StatusCode != http.StatusForbidden) {
			t.Errorf("grpc-web POST from %q: %d, want ok=%v (403 if refused)", tc.origin, resp.StatusCode, tc.ok)
		}
	}

	// A browser on the allowed origin is told by the preflight that it may
	// call; one on a foreign origin is refused before anything runs.
	if resp := preflight(t, gw.addr, "https://friend.example"); resp.StatusCode >= 300 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://friend.example" {
		t.Errorf("preflight from the allowed origin: %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if resp := preflight(t, gw.addr, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from a foreign origin: %d, want 403", resp.StatusCode)
	}
}

// DNS rebinding: a page from evil.example whose name was re-pointed at
// 127.0.0.1 sends Origin and Host both naming evil.example. On a loopback
// listener that is not the page's own origin.
func TestRebindingRefused(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, nil)
	_, port, err := net.SplitHostPort(gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"evil.example:" + port, false},
		{"localhost:" + port, true},
		{"127.0.0.1:" + port, true},
	} {
		req, err := http.NewRequest(http.MethodPost, "http://"+gw.addr+"/chat.v1.ChatService/ListUsers", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/grpc-web+proto")
		req.Header.Set("X-Grpc-Web", "1")
		req.Header.Set("Origin", "http://"+tc.host)
		resp := do(t, req)
		if tc.ok && resp.StatusCode != http.StatusOK || !tc.ok && resp.StatusCode != http.StatusForbidden {
			t.Errorf("grpc-web POST with Host and Origin %s: %d, want ok=%v (403 if refused)", tc.host, resp.StatusCode, tc.ok)
		}
	}
}

func TestBadAllowedOrigin(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"friend.example", "ftp://friend.example", "https://friend.example/chat"} {
		_, err := gateway.New(nil, gateway.Config{AllowedOrigins: []string{o}, KeepaliveTime: time.Second, KeepaliveTimeout: time.Second, JoinTimeout: time.Second, Page: emptyFS{}}, nil)
		if err == nil {
			t.Errorf("allowed origin %q accepted, want an error", o)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"*", "*"},
		{"https://chat.example.com", "https://chat.example.com"},
		{"https://chat.example.com/", "https://chat.example.com"},
		{"HTTPS://Chat.Example.COM", "https://chat.example.com"},
		{"https://chat.example.com:443", "https://chat.example.com"},
		{"http://chat.example.com:80/", "http://chat.example.com"},
		{"https://chat.example.com:8443", "https://chat.example.com:8443"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"http://[0:0::1]", "http://[::1]"},
	} {
		got, err := gateway.ParseOrigin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"chat.example.com", `"chat.example.com" has no scheme: write https://chat.example.com`},
		{"chat.example.com:8443", "write https://chat.example.com:8443"},
		{"chat.example.com/chat", "write https://chat.example.com "},
		{"ftp://chat.example.com", "scheme must be https or http"},
		{"https://chat.example.com/chat", "is more than an origin: pages are allowed by their origin alone, scheme://host[:port], so write https://chat.example.com"},
		{"https://chat.example.com?x=1", "so write https://chat.example.com"},
		{"https://chat.example.com#top", "so write https://chat.example.com"},
		{"https://me@chat.example.com", "has a user name"},
		{"https://*.example.com", "no wildcards"},
		{"https://bücher.example", "ASCII form"},
		{"https://chat.example.com:0", "port must be 1 to 65535"},
		{"https://chat.example.com:99999", "port must be 1 to 65535"},
		{"https://", "is not an origin"},
		{"", "is not an origin"},
		{"null", "only * allows it"},
	} {
		got, err := gateway.ParseOrigin(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseOrigin(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

func TestBadTimeoutsAndSizes(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*gateway.Config){
		"no join timeout":           func(c *gateway.Config) { c.JoinTimeout = 0 },
		"negative join timeout":     func(c *gateway.Config) { c.JoinTimeout = -time.Second },
		"no keepalive time":         func(c *gateway.Config) { c.KeepaliveTime = 0 },
		"negative max header bytes": func(c *gateway.Config) { c.MaxHeaderBytes = -1 },
		"no max receive size":       func(c *gateway.Config) { c.MaxRecvMsgSize = 0 },
	} {
		cfg := gateway.Config{KeepaliveTime: time.Second, KeepaliveTimeout: time.Second, JoinTimeout: time.Second, MaxRecvMsgSize: 16 << 10, Page: emptyFS{}}
		edit(&cfg)
		if _, err := gateway.New(nil, cfg, nil); err == nil {
			t.Errorf("%s: accepted, want an error", name)
		}
	}
}

func TestPageAndHealth(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, nil)
	for path, want := range map[string]int{"/": 200, "/healthz": 200, "/nope": 404} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw.addr+path, nil)
		resp := do(t, req)
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/" && resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET /: no Content-Security-Policy")
		}
	}
}

// /healthz follows Config.Serving, so that a load balancer stops sending
// browsers to a chatd that takes no new sessions.
func TestHealthFollowsServing(t *testing.T) {
	t.Parallel()
	var serving atomic.Bool
	serving.Store(true)
	gw := startGateway(t, func(c *gateway.Config) { c.Serving = serving.Load })
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw.addr+"/healthz", nil)
		return do(t, req).StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Errorf("GET /healthz while serving: %d, want 200", code)
	}
	serving.Store(false)
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz while not serving: %d, want 503", code)
	}
}

// A websocket that goes away without grpc-web's end marker (a closed tab, a
// killed browser) is a disconnect, not a logout, and is seen at once; the
// end marker alone is a logout.
func TestWebsocketEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, c *wsClient, p *netproxy.Proxy)
		want chatv1.LeaveReason
	}{
		{"tab closed", func(_ *testing.T, c *wsClient, _ *netproxy.Proxy) { _ = c.conn.Close(websocket.StatusGoingAway, "") }, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED},
		{"connection closed", func(_ *testing.T, _ *wsClient, p *netproxy.Proxy) { _ = p.Close() }, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED},
		{"end of sending", func(t *testing.T, c *wsClient, _ *netproxy.Proxy) { c.finishSend(t) }, chatv1.LeaveReason_LEAVE_REASON_LOGOUT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw := startGateway(t, nil)
			proxy, err := netproxy.New(gw.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { proxy.Close() })
			bob := join(t, gw.addr, "bob")
			alice := join(t, proxy.Addr(), "alice")
			bob.expectJoined(t, "alice")
			start := time.Now()
			tc.end(t, alice, proxy)
			if got := bob.expectLeft(t, "alice"); got != tc.want {
				t.Errorf("bob saw alice leave with %v, want %v", got, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("bob saw alice leave after %s, want within 2s", d)
			}
		})
	}
}

// A browser whose network vanished (no FIN, no reset) is found by the
// gateway's ping within keepalive time + timeout, and one that is idle but
// alive answers the pings and stays.
func TestDeadPeerFound(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, nil) // keepalive 1s + 1s
	proxy, err := netproxy.New(gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	bob := join(t, gw.addr, "bob")
	idle := join(t, gw.addr, "idle")
	bob.expectJoined(t, "idle")
	join(t, proxy.Addr(), "alice")
	bob.expectJoined(t, "alice")

	start := time.Now()
	proxy.Freeze()
	if got := bob.expectLeft(t, "alice"); got != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED {
		t.Errorf("bob saw alice leave with %v, want DISCONNECTED", got)
	}
	// The bound is 2s of silence; alice had just spoken (her join), so it
	// is measured from the freeze, with room for a slow machine.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dead alice found after %s, want within keepalive time + timeout (2s)", d)
	}

	// idle has said nothing for more than 2s by now: its pongs kept it.
	if time.Since(start) < 2500*time.Millisecond {
		// Nothing to wait on: what is checked is that nothing happens to
		// idle during a whole keepalive cycle.
		time.Sleep(2500*time.Millisecond - time.Since(start))
	}
	bob.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "still there?"}}})
	for {
		ev := idle.next(t)
		if l := ev.GetUserLeft(); l != nil && l.GetUser().GetUsername() == "idle" {
			t.Fatalf("idle was dropped (%v) although it answered every ping", l.GetReason())
		}
		if ev.GetMessage().GetText() == "still there?" {
			break
		}
	}
}

// emptyFS is a page with no files.
type emptyFS struct{}

func (emptyFS) Open(string) (fs.File, error) { return nil, fs.ErrNotExist }

// Browsers offer permessage-deflate on every websocket; the gateway
// declines it (each small response compressed alone costs more CPU and a
// compressor's memory per socket than it saves on the wire), and the chat
// goes on uncompressed.
func TestWebsocketCompressionDeclined(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, nil)
	c, resp, err := dialChatWith(t, context.Background(), gw.addr, &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("the gateway accepted websocket extensions %q; want none", ext)
	}
	c.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "alice"}}})
	if ev := c.next(t); ev.GetWelcome() == nil {
		t.Fatalf("first event %v, want a welcome", ev)
	}
}
