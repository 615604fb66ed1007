package gateway_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chatd/chatd/internal/tlstest"
	"nhooyr.io/websocket"
)

// joinTLS opens a Chat stream over wss with client and joins as name.
func joinTLS(t *testing.T, addr string, client *http.Client, name string) *wsClient {
	t.Helper()
	c, _, err := dialChatWith(t, t.Context(), addr, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial wss://%s: %v", addr, err)
	}
	c.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}})
	if ev := c.next(t); ev.GetWelcome() == nil {
		t.Fatalf("%s: first event %v, want a welcome", name, ev)
	}
	return c
}

// Over TLS: the page over https, the chat over wss, the keepalive pings
// inside TLS, and a renewed certificate taken by new connections while a
// session on the old one goes on.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	first, certFile, keyFile := ca.IssueFiles()
	certs, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: 0})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, func(c *gateway.Config) { // keepalive 1s + 1s
		c.TLS = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	})
	// No Client.Timeout: the websocket library refuses a client with one
	// (it would cut a websocket); the dial has a context with a deadline.
	newClient := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: ca.ClientConfig(), ForceAttemptHTTP2: true, ResponseHeaderTimeout: waitTimeout}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	get := func(client *http.Client) *http.Response {
		t.Helper()
		resp, err := client.Get("https://" + gw.addr + "/")
		if err != nil {
			t.Fatalf("GET https://%s/: %v", gw.addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<title>chat</title>") {
			t.Fatalf("GET /: %s %q, want the page", resp.Status, body)
		}
		return resp
	}
	resp := get(newClient())
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(first.Serial) != 0 {
		t.Errorf("serial %s, want %s", got, first.Serial)
	}
	if resp.ProtoMajor != 1 {
		t.Errorf("served %s; want HTTP/1.1 (see Gateway.Serve)", resp.Proto)
	}

	// Plain HTTP to the TLS port gets no page.
	if resp, err := (&http.Client{Timeout: waitTimeout}).Get("http://" + gw.addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS port got the page")
		}
	}

	client := newClient()
	bob := joinTLS(t, gw.addr, client, "bob")
	idle := joinTLS(t, gw.addr, client, "idle")
	bob.expectJoined(t, "idle")

	second := ca.Issue()
	tlstest.Replace(t, certFile, keyFile, second)
	resp = get(newClient())
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(second.Serial) != 0 {
		t.Errorf("after the renewal: serial %s, want %s", got, second.Serial)
	}
	alice := joinTLS(t, gw.addr, newClient(), "alice")
	bob.expectJoined(t, "alice")

	// A dead peer over TLS is found as over plain HTTP: the websocket is
	// watched under TLS.
	proxy, err := netproxy.New(gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	joinTLS(t, proxy.Addr(), newClient(), "carol")
	bob.expectJoined(t, "carol")
	idle.expectJoined(t, "carol")
	start := time.Now()
	proxy.Freeze()
	if got := bob.expectLeft(t, "carol"); got != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED {
		t.Errorf("bob saw carol leave with %v, want DISCONNECTED", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dead carol found after %s, want within keepalive time + timeout (2s)", d)
	}

	// idle says nothing for more than keepalive time + timeout (2s): the
	// gateway's pings must reach it, inside TLS, and its pongs keep it.
	// Nothing to wait on: what is checked is that nothing happens.
	if d := time.Since(start); d < 2500*time.Millisecond {
		time.Sleep(2500*time.Millisecond - d)
	}
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "after the renewal"}}})
	for _, c := range []*wsClient{idle, bob} {
		for {
			ev := c.next(t)
			if l := ev.GetUserLeft(); l != nil && l.GetUser().GetUsername() != "carol" {
				t.Fatalf("%s left (%v) during the keepalive cycle", l.GetUser().GetUsername(), l.GetReason())
			}
			if ev.GetMessage().GetText() == "after the renewal" {
				break
			}
		}
	}
}
