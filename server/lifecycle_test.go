package server_test

// Tests of how sessions end when things go wrong: slow clients, vanished
// peers, server shutdown. All over real TCP.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// A client that stops reading is dropped as too slow once its queue
// overflows; the others are told, and go on at full speed with no gap.
func TestSlowClientIsDropped(t *testing.T) {
	t.Parallel()
	const queueSize = 8
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.MessageRate = 0
	}))

	// Fixed 64 KiB flow-control windows (the minimum; no BDP growth), so a
	// few hundred KiB back up to the server's queue.
	slowConn := dial(t, ts.addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	slow := joinOn(t, slowConn, "slow")
	// From here on nobody reads slow's stream.
	observer := join(t, ts, "observer")
	sender := join(t, ts, "sender")
	senderJoined := observer.next(t)

	// The sender sends 4 KB messages one at a time and waits until both it
	// and the observer have them, so neither of them is ever more than a
	// couple of events behind, until the server reports slow gone. 64 KiB of
	// window plus gRPC's 64 KiB of write buffer plus the queue is about 40
	// messages; a thousand means the server never dropped it.
	observed := append(slices.Clone(observer.greeting), senderJoined)
	// upTo reads c's events up to the message with clientID, and reports
	// whether slow's user_left TOO_SLOW was among them.
	upTo := func(c *client, clientID string) (droppedSlow bool) {
		t.Helper()
		for {
			ev := c.next(t)
			if c == observer {
				observed = append(observed, ev)
			}
			if ev.GetUserLeft() != nil {
				expectLeft(t, c.name, ev, "slow", chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
				droppedSlow = true
				continue
			}
			if ev.GetMessage().GetClientId() == clientID {
				return droppedSlow
			}
			t.Fatalf("%s got %v; want message %s or slow's user_left", c.name, ev, clientID)
		}
	}
	big := strings.Repeat("x", 4000)
	dropped, sent := false, 0
	for i := 0; i < 1000 && !dropped; i++ {
		sent++
		id := fmt.Sprint(i)
		sender.say(t, big, id)
		dropped = upTo(sender, id)
		if seen := upTo(observer, id); seen != dropped {
			t.Fatalf("after message %s the sender saw slow dropped: %v, the observer: %v; want the same", id, dropped, seen)
		}
	}
	t.Logf("slow dropped after %d messages", sent)
	if !dropped {
		t.Fatal("slow client still online after 1000 messages it did not read; want it dropped as too slow")
	}
	sender.say(t, "after", "after")
	for _, c := range []*client{sender, observer} {
		if upTo(c, "after") {
			t.Fatalf("%s saw slow's user_left twice", c.name)
		}
	}

	// The observer saw every event, in order, slow's TOO_SLOW among them.
	obsView, err := applyEvents("observer", observed)
	if err != nil {
		t.Fatalf("observer's events: %v", err)
	}
	if !slices.Equal(obsView.online, []string{"observer", "sender"}) {
		t.Errorf("observer's view = %q; want [observer sender]", obsView.online)
	}
	if got := listUsers(t, ts); !slices.Equal(got, []string{"observer", "sender"}) {
		t.Errorf("ListUsers = %q; want [observer sender]", got)
	}

	// When slow reads at last, it gets a gap-free prefix of the order and
	// then RESOURCE_EXHAUSTED, not its own user_left.
	got, st := slow.drainToEnd(t, codes.ResourceExhausted)
	t.Logf("slow got %d events before %q", len(got), st.Message())
	slowView, err := applyEvents("slow", append(slices.Clone(slow.greeting), got...))
	if err != nil {
		t.Fatalf("slow's events: %v", err)
	}
	for _, ev := range got {
		if ev.GetUserLeft() != nil {
			t.Errorf("slow got %v; want no user_left before its stream ends", ev)
		}
	}
	// From the observer's join on, what slow got is what the observer got,
	// up to where slow was dropped.
	if len(slowView.keys) == 0 || !strings.HasPrefix(slowView.keys[0], "user_joined observer ") {
		t.Fatalf("slow's first events %v; want the observer's join first", got)
	}
	if rest := slowView.keys[1:]; len(rest) > len(obsView.keys) || !slices.Equal(rest, obsView.keys[:len(rest)]) {
		t.Errorf("slow's events after the observer's join are not a prefix of the observer's:\n slow:     %q\n observer: %q", rest, obsView.keys)
	}
	if len(got) < queueSize {
		t.Errorf("slow got %d events; want at least its queue's %d", len(got), queueSize)
	}
}

// A peer that vanishes without closing its connection is found by the
// server's keepalive pings and leaves as disconnected.
func TestKeepaliveFindsVanishedPeer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.KeepaliveTime = time.Second // gRPC's minimum
		c.KeepaliveTimeout = time.Second
	}))
	proxy, err := netproxy.New(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	alice := join(t, ts, "alice")
	// idle is as quiet as ghost, but its pings are answered: it stays.
	join(t, ts, "idle")
	alice.next(t) // idle joined
	joinOn(t, dial(t, proxy.Addr()), "ghost")
	alice.next(t) // ghost joined

	start := time.Now()
	proxy.Freeze()
	// Ping after 1s idle, give up 1s later: 2-3s. The bound allows for a
	// busy machine.
	expectLeft(t, "alice", alice.nextWithin(t, 10*time.Second), "ghost", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	t.Logf("vanished peer found after %s", time.Since(start).Round(time.Millisecond))
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "idle"}) {
		t.Errorf("ListUsers = %q; want [alice idle]", got)
	}
}

// Shutdown ends every session with UNAVAILABLE and no user_left storm,
// turns health to NOT_SERVING, refuses joins, and returns promptly.
func TestShutdown(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	var users []*client
	for _, name := range []string{"alice", "bob", "carol"} {
		users = append(users, join(t, ts, name))
	}
	users[0].say(t, "hi", "")
	for i, c := range users {
		for range len(users) - 1 - i { // the joins after c's own
			c.next(t)
		}
		expectMessage(t, c.name, c.next(t), "alice", "hi", "")
	}

	// A stream that has not joined yet when the shutdown starts.
	pending := openStream(t, dial(t, ts.addr))
	pending.name = "pending"

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// A health watch holds GracefulStop like any stream, so it is
	// cancelled once it has seen NOT_SERVING.
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	watch, err := healthpb.NewHealthClient(dial(t, ts.addr)).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: "chat.v1.ChatService"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown = %v, %v; want SERVING", resp, err)
	}

	start := time.Now()
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		ts.srv.Shutdown(ctx)
	}()

	for _, c := range users {
		// The very next thing is the end: no user_left about the others.
		st := c.expectEnd(t, codes.Unavailable)
		if st.Message() != "server shutting down, reconnect later" {
			t.Errorf("%s: shutdown message %q; want %q", c.name, st.Message(), "server shutting down, reconnect later")
		}
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during shutdown = %v, %v; want NOT_SERVING", resp, err)
	}
	cancelWatch()

	// It ends without waiting for its join or the join timeout.
	pending.expectEnd(t, codes.Unavailable)

	select {
	case <-shutdownDone:
		t.Logf("Shutdown took %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(waitTimeout):
		t.Fatalf("Shutdown did not return within %s of every session ending", waitTimeout)
	}

	// Nothing is served any more.
	stream, err := chatv1.NewChatServiceClient(dial(t, ts.addr)).Chat(ctx)
	if err == nil {
		_ = stream.Send(joinReq("erin"))
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("join after Shutdown: %v; want UNAVAILABLE", describe(err))
	}
}

// A stream that will not end by itself (here a health watch) cannot hold
// Shutdown past its context. A stream that never joins does not hold it at
// all: it ends when the shutdown starts.
func TestShutdownIsBoundedByContext(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil)) // JoinTimeout 10s
	alice := join(t, ts, "alice")
	openStream(t, dial(t, ts.addr)) // never joins
	watch, err := healthpb.NewHealthClient(dial(t, ts.addr)).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	const grace = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	ts.srv.Shutdown(ctx)
	if d := time.Since(start); d > grace+5*time.Second {
		t.Errorf("Shutdown with a %s context took %s", grace, d)
	}
	alice.expectEnd(t, codes.Unavailable)
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health watch during shutdown = %v, %v; want NOT_SERVING", resp, err)
	}
	if resp, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("health watch after forced shutdown = %v, %v; want the stream closed, UNAVAILABLE", resp, describe(err))
	}
}
