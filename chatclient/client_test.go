package chatclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/internal/tlstest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// start serves a chatd of the test's own with cfg and returns its address.
func start(t *testing.T, cfg server.Config) string {
	t.Helper()
	_, addr := servertest.Start(t, cfg, slog.New(slog.DiscardHandler))
	return addr
}

// connect joins as name, and closes the client when the test ends.
func connect(t *testing.T, cfg chatclient.Config, name string) *chatclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := chatclient.Connect(ctx, cfg, name)
	if err != nil {
		t.Fatalf("Connect(%s): %v", name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// breakable is a proxy to addr whose connections the test can cut.
func breakable(t *testing.T, addr string) *netproxy.Proxy {
	t.Helper()
	return netproxy.Start(t, addr)
}

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// until calls c.Recv until match accepts an event, and returns it; the
// events before it go to skipped, if set.
func until(t *testing.T, c *chatclient.Client, match func(*chatv1.ChatResponse) bool, skipped *[]*chatv1.ChatResponse) *chatv1.ChatResponse {
	t.Helper()
	for {
		ev, err := c.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if match(ev) {
			return ev
		}
		if skipped != nil {
			*skipped = append(*skipped, ev)
		}
	}
}

// message matches the message with text.
func message(text string) func(*chatv1.ChatResponse) bool {
	return func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == text }
}

// A broken connection is taken back: Recv returns a welcome that says
// nothing was missed, then the messages sent meanwhile, one at a time, in
// order, numbered on from the last event before the break.
func TestRecvResumesAfterTheConnectionBreaks(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	proxy := breakable(t, addr)
	alice := connect(t, chatclient.Config{Servers: []string{proxy.Addr()}, ReconnectTimeout: 20 * time.Second}, "alice")
	bob := connect(t, chatclient.Config{Servers: []string{addr}}, "bob")
	if err := alice.SendText("", "before", "a1"); err != nil {
		t.Fatal(err)
	}
	last := until(t, alice, message("before"), nil).GetSeq()

	proxy.Refuse(true)
	proxy.CloseConns()
	until(t, bob, func(ev *chatv1.ChatResponse) bool { return ev.GetUserLeft() != nil }, nil)
	for i := range 5 {
		if err := bob.SendText("", fmt.Sprint("missed ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	until(t, bob, message("missed 4"), nil)
	proxy.Refuse(false)

	ev := until(t, alice, func(ev *chatv1.ChatResponse) bool { return ev.GetWelcome() != nil }, nil)
	if r := ev.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("recovery %s, want RECOVERY_COMPLETE", r)
	}
	if ev.GetSeq() != last {
		t.Errorf("welcome seq %d, want %d, the last event's before the break", ev.GetSeq(), last)
	}
	var texts []string
	seq := ev.GetSeq()
	for len(texts) < 5 {
		ev, err := alice.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetSeq() != seq+1 {
			t.Fatalf("seq %d after %d, want one after the other", ev.GetSeq(), seq)
		}
		seq = ev.GetSeq()
		if m := ev.GetMessage(); m != nil {
			texts = append(texts, m.GetText())
		}
	}
	for i, text := range texts {
		if want := fmt.Sprint("missed ", i); text != want {
			t.Errorf("message %d %q, want %q", i, text, want)
		}
	}
}

// Without ReconnectTimeout, Recv returns why the stream broke.
func TestRecvWithoutReconnectTimeoutReturnsTheBreak(t *testing.T) {
	t.Parallel()
	proxy := breakable(t, start(t, server.DefaultConfig()))
	alice := connect(t, chatclient.Config{Servers: []string{proxy.Addr()}}, "alice")
	proxy.CloseConns()
	for {
		_, err := alice.Recv()
		if err == nil {
			continue
		}
		if !chatclient.Resumable(err) {
			t.Errorf("Recv = %v, want an error a reconnection would take back", err)
		}
		if _, again := alice.Recv(); again != err {
			t.Errorf("Recv again = %v, want %v again", again, err)
		}
		return
	}
}

// When no server takes the session back in time, Recv says so.
func TestRecvGivesUpAfterReconnectTimeout(t *testing.T) {
	t.Parallel()
	proxy := breakable(t, start(t, server.DefaultConfig()))
	alice := connect(t, chatclient.Config{Servers: []string{proxy.Addr()}, ReconnectTimeout: 500 * time.Millisecond}, "alice")
	proxy.Refuse(true)
	proxy.CloseConns()
	for {
		_, err := alice.Recv()
		if err == nil {
			continue
		}
		var gave *chatclient.GaveUpError
		if !errors.As(err, &gave) {
			t.Fatalf("Recv = %v, want a *GaveUpError", err)
		}
		return
	}
}

// Connect moves on from a server that is not there to the next.
func TestConnectMovesOnFromAnUnreachableServer(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	c := connect(t, chatclient.Config{Servers: []string{closedAddr(t), addr}}, "alice")
	if got := c.Welcome().GetYou().GetUsername(); got != "alice" {
		t.Errorf("welcomed as %q, want alice", got)
	}
}

// A refused join is the server's status, and no other server is tried.
func TestConnectReturnsTheRefusal(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	connect(t, chatclient.Config{Servers: []string{addr}}, "alice")
	_, err := chatclient.Connect(t.Context(), chatclient.Config{Servers: []string{addr, closedAddr(t)}}, "alice")
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("Connect as a name in use = %v, want AlreadyExists", err)
	}
	_, err = chatclient.Connect(t.Context(), chatclient.Config{Servers: []string{closedAddr(t)}, DialTimeout: time.Second}, "bob")
	var ue *chatclient.UnreachableError
	if !errors.As(err, &ue) || !ue.Refused() {
		t.Fatalf("Connect to no chatd = %v, want a refused *UnreachableError", err)
	}
}

// Leave logs out: the others see the session leave, and Recv ends with
// io.EOF.
func TestLeaveEndsTheSession(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	cfg := chatclient.Config{Servers: []string{addr}, ReconnectTimeout: 10 * time.Second}
	alice := connect(t, cfg, "alice")
	bob := connect(t, cfg, "bob")
	if err := alice.Leave(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := alice.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv after Leave = %v, want io.EOF", err)
		}
	}
	left := until(t, bob, func(ev *chatv1.ChatResponse) bool { return ev.GetUserLeft() != nil }, nil)
	if name := left.GetUserLeft().GetUser().GetUsername(); name != "alice" {
		t.Errorf("%s left, want alice", name)
	}
}

// Close ends a Recv under way, from another goroutine.
func TestCloseEndsRecv(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	alice := connect(t, chatclient.Config{Servers: []string{addr}, ReconnectTimeout: 10 * time.Second}, "alice")
	done := make(chan error)
	go func() {
		for {
			if _, err := alice.Recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	alice.Close()
	if err := <-done; !errors.Is(err, chatclient.ErrClosed) {
		t.Errorf("Recv after Close = %v, want ErrClosed", err)
	}
	if err := alice.SendText("", "late", ""); !errors.Is(err, chatclient.ErrClosed) {
		t.Errorf("SendText after Close = %v, want ErrClosed", err)
	}
}

// A session on one of several servers moves to the next when its server
// goes away (the first refuses from then on), and resumes there: here both
// lead to one chatd, as the nodes of a cluster share one chat.
func TestRecvMovesToTheNextServer(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	first, second := breakable(t, addr), breakable(t, addr)
	cfg := chatclient.Config{Servers: []string{first.Addr(), second.Addr()}, ReconnectTimeout: 20 * time.Second}
	alice := connect(t, cfg, "alice")
	first.Refuse(true)
	first.CloseConns()
	w := until(t, alice, func(ev *chatv1.ChatResponse) bool { return ev.GetWelcome() != nil }, nil)
	if r := w.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("recovery %s, want RECOVERY_COMPLETE", r)
	}
	if err := alice.SendText("", "back", "b1"); err != nil {
		t.Fatal(err)
	}
	until(t, alice, message("back"), nil)
}

// Config.TLS and Config.Token reach a chatd that serves TLS and wants
// sign-in.
func TestConnectWithTLSAndToken(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	_, certFile, keyFile := ca.IssueFiles()
	certs, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.ParseKey([]byte(authtest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := servertest.Start(t, server.DefaultConfig(), slog.New(slog.DiscardHandler),
		server.WithTLS(&tls.Config{GetCertificate: certs.GetCertificate}), server.WithAuth(v))

	cfg := chatclient.Config{Servers: []string{addr}, TLS: ca.ClientConfig()}
	if _, err := chatclient.Connect(t.Context(), cfg, "alice"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Connect without a token = %v, want Unauthenticated", err)
	}
	cfg.Token = authtest.HS256(t, authtest.Claims{Subject: "alice", Expires: time.Now().Add(time.Hour)})
	alice := connect(t, cfg, "alice")
	if got := alice.Welcome().GetYou().GetUsername(); got != "alice" {
		t.Errorf("welcomed as %q, want alice", got)
	}
}
