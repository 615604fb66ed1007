package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"nhooyr.io/websocket"
)

// joinAs opens a Chat websocket whose upgrade carries the X-Forwarded-For
// xff (none if empty) and whose grpc-web headers carry meta, joins as name
// and returns the first event or the stream's grpc-status.
func joinAs(t *testing.T, addr, xff, meta, name string) (*wsClient, *chatv1.ChatResponse, string) {
	t.Helper()
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	c, _, err := dialChatWith(t, withFirstMessageHeaders(context.Background(), meta), addr, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}})
	select {
	case ev := <-c.events:
		return c, ev, ""
	case <-c.done:
		return c, nil, c.status
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no answer to the join", name)
	}
	return nil, nil, ""
}

// Browsers' sessions count against their own address: the gateway's peer,
// or behind a trusted proxy the address in the upgrade's X-Forwarded-For,
// never what the page's script writes into grpc-web's headers.
func TestClientAddressOfBrowsers(t *testing.T) {
	t.Parallel()
	exhausted := fmt.Sprint(int(codes.ResourceExhausted))
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			t.Parallel()
			tg := startGatewayServer(t, func(c *server.Config) {
				c.PerClient.MaxSessions = 1
				if trusted {
					c.PerClient.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			}, nil, io.Discard)
			if _, ev, st := joinAs(t, tg.addr, "203.0.113.1", "", "alice"); ev.GetWelcome() == nil {
				t.Fatalf("alice: %v, status %q; want a welcome", ev, st)
			}
			// The same client address: its one session is taken. A script
			// cannot get out of it by naming another address itself.
			if _, ev, st := joinAs(t, tg.addr, "203.0.113.1", "x-forwarded-for: 198.51.100.7\r\n", "bob"); st != exhausted {
				t.Errorf("bob from alice's address: %v, status %q; want RESOURCE_EXHAUSTED", ev, st)
			}
			// Another address behind the proxy has its own, if the proxy
			// is trusted; otherwise every client is the proxy.
			_, ev, st := joinAs(t, tg.addr, "203.0.113.2", "", "carol")
			if trusted && ev.GetWelcome() == nil {
				t.Errorf("carol from another address behind a trusted proxy: %v, status %q; want a welcome", ev, st)
			}
			if !trusted && st != exhausted {
				t.Errorf("carol behind an untrusted proxy: %v, status %q; want RESOURCE_EXHAUSTED (X-Forwarded-For ignored)", ev, st)
			}
		})
	}
}

// The page's port counts connections per address with the gRPC port's
// limiter: past the limit they are closed at once, and other addresses
// are served.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	const limit = 3
	tg := startGatewayServer(t, func(c *server.Config) { c.PerClient.MaxConns = limit }, func(*gateway.Config) {}, io.Discard)
	for i := range limit {
		c, err := net.Dial("tcp", tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// Each is served: a request on it is answered.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 12)
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 200" {
			t.Fatalf("connection %d: %q, %v; want it served", i, buf, err)
		}
	}
	extra, err := net.Dial("tcp", tg.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection past the limit: read %d bytes, %v; want it closed at once", n, err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	other := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := other.Get("http://" + tg.addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("from another address: %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	other.CloseIdleConnections()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
