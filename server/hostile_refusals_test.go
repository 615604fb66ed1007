package server_test

// Hostile clients that make chatd refuse them, from many addresses or as
// fast as they are refused (issue 23), each beside an honest user from
// another address who must carry on.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// chatMethod is the path of the Chat stream.
const chatMethod = "/chat.v1.ChatService/Chat"

// watchEnds reads rc's frames until the connection closes, sending how
// each stream ended on ends (which must have room for every end), and
// returns a channel closed when the server closed the connection. The
// test's end closes it otherwise. It writes nothing (gRPC's server needs
// no answer to its SETTINGS, nor to its pings within a test), so the test
// may go on writing.
func watchEnds(t *testing.T, rc *rawConn, ends chan<- streamEnd) <-chan struct{} {
	t.Helper()
	closed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		answered := make(map[uint32]bool)
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					close(closed)
				}
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				if !answered[f.StreamID] {
					ends <- streamEnd{reset: true, rst: f.ErrCode}
				}
			case *http2.MetaHeadersFrame:
				if e, ok := statusOf(f); ok {
					answered[f.StreamID] = true
					ends <- e
				}
			}
		}
	})
	t.Cleanup(func() {
		_ = rc.c.SetReadDeadline(time.Now())
		wg.Wait()
	})
	return closed
}

// openStreams opens n Chat streams on rc, from stream id first on, that
// never send a thing.
func openStreams(t *testing.T, rc *rawConn, first uint32, n int) {
	t.Helper()
	for i := range n {
		if err := rc.headers(first+uint32(2*i), chatMethod); err != nil {
			t.Fatalf("writing stream %d: %v", i, err)
		}
	}
}

// Two hundred addresses with fifteen streams each that never join, each
// address under its limit, filled the room for streams waiting to join,
// and honest newcomers were refused until the attackers' streams timed
// out. The room still takes a newcomer that sends its join at once: the
// address holding the most waiting streams gives its oldest up, which ends
// with RESOURCE_EXHAUSTED saying why.
func TestWaitingRoomCannotBeFilled(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.MaxUnjoined = 4
		c.MaxUnjoined = 20
		c.JoinTimeout = time.Minute // the attackers' streams wait for the whole test
	})
	reg := prometheus.NewRegistry()
	ts := startServer(t, cfg, server.WithMetrics(reg))
	ends := make(chan streamEnd, 64)
	attack := func(ip string, streams int) {
		rc := dialRawFrom(t, ts.addr, ip)
		watchEnds(t, rc, ends)
		openStreams(t, rc, 1, streams)
	}
	// ended expects n streams to end RESOURCE_EXHAUSTED, saying want if
	// it is not empty.
	ended := func(n int, want string) {
		t.Helper()
		for i := range n {
			select {
			case e := <-ends:
				if e.grpcStatus != fmt.Sprint(int(codes.ResourceExhausted)) || !strings.Contains(e.grpcMessage, want) {
					t.Fatalf("a stream ended with %+v; want RESOURCE_EXHAUSTED saying %q", e, want)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("%d of %d streams ended; want the rest too", i, n)
			}
		}
	}
	full := func() {
		t.Helper()
		waitFor(t, "the room to be full", func() bool {
			return metricValue(t, reg, "chatd_streams", "state=unjoined") == float64(cfg.MaxUnjoined)
		})
	}
	// Eight addresses with four streams each: 32 for 20 places. The
	// last addresses' streams take places from the first ones', until
	// they hold as many; then they are refused.
	for i := range 8 {
		attack(fmt.Sprintf("127.0.1.%d", i+1), cfg.PerClient.MaxUnjoined)
	}
	ended(32-cfg.MaxUnjoined, "")
	full()
	for i := range 6 {
		// The newcomer finds the room full of attackers' streams, and
		// joins; then an attacker fills the place it took.
		c := joinOn(t, dial(t, ts.addr, fromAddr("127.0.0.2")), fmt.Sprintf("newcomer%d", i))
		ended(1, "gave its place to a newer one")
		c.say(t, "hello", "n1")
		expectMessage(t, c.name, c.next(t), c.name, "hello", "n1")
		attack(fmt.Sprintf("127.0.2.%d", i+1), 1)
		full()
	}
	select {
	case e := <-ends:
		t.Errorf("another waiting stream ended (%+v); want each newcomer to take one place only", e)
	default:
	}
}

// An address that keeps being refused (150 connections re-opening streams
// as fast as they were refused held chatd's core and an honest client's
// echo at over a second) has the connection of its refusals closed once
// it is past its budget of refusals, and new ones closed as they are
// accepted; other addresses carry on.
func TestRefusedAddressShutOut(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.MaxUnjoined = 2
		c.PerClient.RefusalRate = 0.01 // no refill within the test
		c.PerClient.RefusalBurst = 20
	})
	ts := startServer(t, cfg)
	rc := dialRawFrom(t, ts.addr, "127.0.0.3")
	ends := make(chan streamEnd, 64)
	closed := watchEnds(t, rc, ends)
	// Two wait; the rest are refused, past the budget too.
	const streams = 40
	openStreams(t, rc, 1, streams)
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatalf("the connection is still open %s after %d refusals on it, %d past the address's budget", waitTimeout, streams-2, streams-2-cfg.PerClient.RefusalBurst)
	}
	close(ends) // the reader is done
	var refused int
	var last string
	for e := range ends {
		if e.grpcStatus == fmt.Sprint(int(codes.ResourceExhausted)) {
			refused++
			last = e.grpcMessage
		}
	}
	if refused <= cfg.PerClient.RefusalBurst || !strings.Contains(last, "too many refusals from your address") {
		t.Errorf("%d streams refused before the connection closed, the last saying %q; want more than the budget of %d, the last saying the address was refused too often", refused, last, cfg.PerClient.RefusalBurst)
	}
	// A new connection from the address is closed at once: gRPC's
	// client sees it fail.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.3"))).ListUsers(ctx, &chatv1.ListUsersRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a list call on a new connection from the address shut out: %v; want UNAVAILABLE", err)
	}
	honestRoundTrip(t, ts, "alice")
}

// A flood of list calls from one address (16 callers held a core at 69%
// refusing them) is shut out the same way once past its budget.
func TestListFloodShutOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(context.Context, chatv1.ChatServiceClient) error
	}{
		{"ListUsers", func(ctx context.Context, cli chatv1.ChatServiceClient) error {
			_, err := cli.ListUsers(ctx, &chatv1.ListUsersRequest{})
			return err
		}},
		{"History", func(ctx context.Context, cli chatv1.ChatServiceClient) error {
			_, err := cli.History(ctx, &chatv1.HistoryRequest{Channel: "general"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { listFloodShutOut(t, tc.call) })
	}
}

func listFloodShutOut(t *testing.T, call func(context.Context, chatv1.ChatServiceClient) error) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.ListRate, c.PerClient.ListBurst = 0.01, 5
		c.PerClient.RefusalRate, c.PerClient.RefusalBurst = 0.01, 20
	})
	ts := startServer(t, cfg)
	cli := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.3")))
	ctx := context.Background()
	var ok, exhausted int
	var last string
	// The connection is closed a moment after the refusal past the
	// budget: wait for it by the clock, not by a count of calls, which a
	// fast machine makes in less than that moment.
	deadline := time.Now().Add(waitTimeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d list calls answered and %d refused, and the connection is still open; want it closed past the address's budget of %d refusals", ok, exhausted, cfg.PerClient.RefusalBurst)
		}
		err := call(ctx, cli)
		switch status.Code(err) {
		case codes.OK:
			ok++
			continue
		case codes.ResourceExhausted:
			exhausted++
			last = status.Convert(err).Message()
			continue
		case codes.Unavailable: // the connection was closed
		default:
			t.Fatalf("list call %d: %v; want OK, RESOURCE_EXHAUSTED, then UNAVAILABLE", i, err)
		}
		break
	}
	// The calls made while the connection is closed (a moment after
	// the refusal past the budget, for its status to reach the client)
	// are refused too.
	if ok != cfg.PerClient.ListBurst || exhausted <= cfg.PerClient.RefusalBurst || !strings.Contains(last, "too many refusals from your address") {
		t.Errorf("%d list calls answered and %d refused before the connection was closed, the last saying %q; want %d answered, more than %d refused, the last saying the address was refused too often", ok, exhausted, last, cfg.PerClient.ListBurst, cfg.PerClient.RefusalBurst)
	}
	// While it is shut out, the client cannot connect again.
	if err := call(ctx, cli); status.Code(err) != codes.Unavailable {
		t.Errorf("a list call from the address shut out, on a new connection: %v; want UNAVAILABLE", err)
	}
	other := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.2")))
	if err := call(ctx, other); err != nil {
		t.Fatalf("the same call from another address: %v", err)
	}
	honestRoundTrip(t, ts, "alice")
}

// Calls refused sign-in are refusals before any session too: an address
// that keeps calling with a bad token is shut out like one that keeps
// opening streams past its limit.
func TestRefusedSignInsShutOut(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.RefusalRate, c.PerClient.RefusalBurst = 0.01, 10
	})
	as := startAuthServer(t, cfg)
	cli := chatv1.NewChatServiceClient(dial(t, as.addr, fromAddr("127.0.0.3")))
	ctx := withToken(callCtx(t), "not-a-token")
	var refused int
	deadline := time.Now().Add(waitTimeout) // see TestListFloodShutOut
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls refused sign-in, and the connection is still open; want it closed past the address's budget of %d refusals", refused, cfg.PerClient.RefusalBurst)
		}
		_, err := cli.ListUsers(ctx, &chatv1.ListUsersRequest{})
		if status.Code(err) == codes.Unauthenticated {
			refused++
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("list call %d with a bad token: %v; want UNAUTHENTICATED, then UNAVAILABLE", i, err)
		}
		break
	}
	if refused <= cfg.PerClient.RefusalBurst {
		t.Errorf("the connection was closed after %d refusals; want more than the budget of %d", refused, cfg.PerClient.RefusalBurst)
	}
	other := chatv1.NewChatServiceClient(dial(t, as.addr, fromAddr("127.0.0.2")))
	if _, err := other.ListUsers(withToken(callCtx(t), as.token(t, "alice", time.Hour)), &chatv1.ListUsersRequest{}); err != nil {
		t.Fatalf("ListUsers with a valid token from another address: %v", err)
	}
}

// Streams and list calls past their address's limits are refused before
// gRPC starts a handler for them (see server/refuse.go): a refusal costs
// far less than serving a call, where it cost as much. gRPC's own metrics,
// counted by an interceptor in front of the handler, see only the calls
// let through; chatd_refusals_total counts the others.
func TestRefusalsSpendNoHandler(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.MaxUnjoined = 1
		c.PerClient.ListRate, c.PerClient.ListBurst = 0.01, 1
	})
	reg := prometheus.NewRegistry()
	ts := startServer(t, cfg, server.WithMetrics(reg))
	const streams, lists = 60, 30
	rc := dialRawFrom(t, ts.addr, "127.0.0.3")
	ends := make(chan streamEnd, streams)
	watchEnds(t, rc, ends)
	openStreams(t, rc, 1, streams)
	for i := range streams - 1 {
		select {
		case e := <-ends:
			if e.grpcStatus != fmt.Sprint(int(codes.ResourceExhausted)) {
				t.Fatalf("a stream past the address's limit ended with %+v; want RESOURCE_EXHAUSTED", e)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("%d of %d streams past the limit refused", i, streams-1)
		}
	}
	cli := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.4")))
	for i := range lists {
		_, err := cli.ListUsers(context.Background(), &chatv1.ListUsersRequest{})
		if want := map[bool]codes.Code{true: codes.OK, false: codes.ResourceExhausted}[i == 0]; status.Code(err) != want {
			t.Fatalf("list call %d: %v; want %v", i, err, want)
		}
	}
	history := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.5")))
	for i := range lists {
		_, err := history.History(context.Background(), &chatv1.HistoryRequest{Channel: "general"})
		if want := map[bool]codes.Code{true: codes.OK, false: codes.ResourceExhausted}[i == 0]; status.Code(err) != want {
			t.Fatalf("History call %d: %v; want %v", i, err, want)
		}
	}
	for _, c := range []struct {
		method string
		want   float64
	}{{"Chat", 1}, {"ListUsers", 1}, {"History", 1}} {
		if got := metricValue(t, reg, "grpc_server_started_total", "grpc_method="+c.method); got != c.want {
			t.Errorf("gRPC started %v handlers of %s; want %v, for the one call let through (the refused ones must not cost a handler)", got, c.method, c.want)
		}
	}
	if got, want := metricValue(t, reg, "chatd_refusals_total", "grpc_code=ResourceExhausted"), float64(streams-1+2*(lists-1)); got != want {
		t.Errorf("chatd_refusals_total{ResourceExhausted} = %v; want %v", got, want)
	}
}
