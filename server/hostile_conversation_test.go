package server_test

import (
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Hostile clients of the new request kinds: typing, read marks, the admin
// service. Each test shows honest users carrying on.

// A client that sends typing on every keystroke, or a thousand times a
// second, costs the others one typing event: its refreshes within 2 s are
// dropped by its node, before the log.
func TestTypingFloodShowsOnce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))
	watcher := join(t, ts, "watcher")
	flood := join(t, ts, "flood")
	expectJoined(t, "watcher", watcher.next(t), "flood", false)
	for range 1000 {
		flood.send(t, typingReq("", "", false))
	}
	expectTyping(t, "watcher", watcher.next(t), "general", "", []string{"flood"}, false)
	watcher.say(t, "only one", "w")
	// The watcher's next event is its own message: no second typing.
	expectMessage(t, "watcher", watcher.next(t), "watcher", "only one", "w")
}

// Marking read over and over at the same message, or backwards, sends
// nothing to anyone; a flood of marks is rate-limited like any request.
func TestMarkReadFloodSendsNothing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate, c.MessageBurst = 10, 20 }))
	alice := join(t, ts, "alice")
	phone := joinDevice(t, ts, alice)
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectJoined(t, "phone", phone.next(t), "bob", false)
	bob.say(t, "one", "")
	id := bob.next(t).GetMessage().GetId()
	alice.next(t)
	phone.next(t)
	phone.send(t, markReadReq("general", "", id, ""))
	expectRead(t, "alice", alice.next(t), "general", "", id, 0)
	expectRead(t, "phone", phone.next(t), "general", "", id, 0)
	for range 100 {
		phone.send(t, markReadReq("general", "", id, "again"))
	}
	// A burst of about 20 goes through, changing nothing; the rest is
	// refused as too many requests. The phone gets those refusals and
	// bob's marker, in whatever order; the laptop only the marker.
	bob.mark(t, "after the flood")
	alice.expectMark(t, "bob", "after the flood")
	limited, marked := 0, false
	for !marked || limited < 100-21 {
		ev := phone.next(t)
		switch {
		case ev.GetRejected().GetCode() == int32(codes.ResourceExhausted):
			limited++
		case ev.GetMessage().GetText() == "after the flood" && !marked:
			marked = true
		default:
			t.Fatalf("phone, after %d rejections: %v; want only rate-limit rejections and bob's marker", limited, ev)
		}
	}
}

// Guessing the admin token costs the guesser its address: past its budget
// of refusals it is shut out, while the admin, from another address, goes
// on.
func TestAdminTokenGuessingShutOut(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.RefusalRate, c.PerClient.RefusalBurst = 0.01, 10
	})
	ts := startServer(t, cfg, server.WithAdminToken(adminToken))
	guesser := &admin{cli: chatv1.NewAdminServiceClient(dial(t, ts.addr, fromAddr("127.0.0.3")))}
	var refused int
	deadline := time.Now().Add(waitTimeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d guesses refused and the connection is still open; want it closed past the budget of %d", refused, cfg.PerClient.RefusalBurst)
		}
		guesser.token = "guess-" + time.Now().String()
		_, err := guesser.cli.ListSessions(guesser.ctx(t), &chatv1.ListSessionsRequest{})
		if status.Code(err) == codes.Unauthenticated {
			refused++
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("guess %d: %v; want UNAUTHENTICATED, then UNAVAILABLE", i, err)
		}
		break
	}
	if refused <= cfg.PerClient.RefusalBurst {
		t.Errorf("shut out after %d refusals; want more than the budget of %d", refused, cfg.PerClient.RefusalBurst)
	}
	real := &admin{cli: chatv1.NewAdminServiceClient(dial(t, ts.addr, fromAddr("127.0.0.2"))), token: adminToken}
	if _, err := real.cli.ListSessions(real.ctx(t), &chatv1.ListSessionsRequest{}); err != nil {
		t.Fatalf("the admin, from another address: %v", err)
	}
}
