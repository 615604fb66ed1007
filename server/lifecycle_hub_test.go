package server_test

// Tests of how sessions end when things go wrong, on a hub driven
// directly: slow clients dropped, and the hub's shutdown (lifecycle_test.go
// has the same over real TCP).

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHubDropsSlowStream(t *testing.T) {
	t.Parallel()
	const queueSize = 2
	h := newHub(t, 10, queueSize)
	slow := mustJoin(t, h, "slow")                                       // queue: welcome, channel_joined (a catch-up: not counted)
	fast := hubJoin(t, h, "fast")                                        // slow's queue: + user_joined
	if err := h.Send(t.Context(), fast, "one", "", "", ""); err != nil { // slow's queue: + one: full
		t.Fatal(err)
	}
	if ev := take(t, fast); ev.GetSeq() != 3 {
		t.Fatalf("fast got %v; want its message with seq 3", ev)
	}

	if err := h.Send(t.Context(), fast, "two", "", "", ""); err != nil { // overflows slow's queue
		t.Fatal(err)
	}
	evs := queued(fast)
	if len(evs) != 2 || evs[0].GetMessage().GetText() != "two" || evs[0].GetSeq() != 4 ||
		evs[1].GetUserLeft().GetUser().GetUsername() != "slow" ||
		evs[1].GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW || evs[1].GetSeq() != 5 {
		t.Fatalf("fast got %v; want message seq 4, then user_left slow TOO_SLOW seq 5", evs)
	}

	if !isEnded(slow) {
		t.Fatal("slow's Ended is open; want it closed when the hub drops it")
	}
	err := slow.EndErr()
	if !errors.Is(err, server.ErrTooSlow) || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("slow.EndErr() = %v (status %v); want ErrTooSlow, RESOURCE_EXHAUSTED", err, status.Code(err))
	}
	// What slow did get is a gap-free prefix: nothing after the overflow.
	got := queued(slow)
	if len(got) != 2+queueSize || got[0].GetWelcome() == nil || got[2].GetUserJoined() == nil || got[3].GetMessage().GetText() != "one" || got[3].GetSeq() != 4 {
		t.Errorf("slow's queue = %v; want its welcome, general, fast's join and the first message, nothing after", got)
	}
	if n := names(h.Users()); !slices.Equal(n, []string{"fast"}) {
		t.Errorf("Users() = %q; want [fast]", n)
	}
	if h.Leave(slow, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Error("Leave(slow) after the hub dropped it = true; want false (no second user_left)")
	}
	if err := h.Send(t.Context(), slow, "still here?", "", "", ""); !errors.Is(err, server.ErrNotJoined) {
		t.Errorf("Send from dropped session = %v; want ErrNotJoined", err)
	}

	// fast goes on with no gap.
	if err := h.Send(t.Context(), fast, "three", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, fast); ev.GetSeq() != 6 {
		t.Errorf("next event seq = %d; want 6", ev.GetSeq())
	}
	// The name is held for slow's resume, not free.
	if _, err := h.Join(t.Context(), "slow", "", 0, netip.Addr{}); !errors.Is(err, server.ErrUsernameTaken) {
		t.Errorf("Join(slow) during its grace period = %v; want ErrUsernameTaken", err)
	}
}

// A client that stops reading is dropped once what waits for it takes
// QueueBytes, long before QueueSize long messages, so that it cannot make
// the server hold that many for it.
func TestHubDropsSlowStreamByBytes(t *testing.T) {
	t.Parallel()
	const queueBytes = 64 << 10
	h := newHubWith(t, func(c *server.Config) { c.QueueBytes, c.MessageRate = queueBytes, 0 })
	stuck := mustJoin(t, h, "stuck")
	sender := hubJoin(t, h, "sender")
	text := strings.Repeat("x", 4000)
	var sent int
	for !isEnded(stuck) && sent < 1024 {
		if err := h.Send(t.Context(), sender, text, "", "stuck", ""); err != nil {
			t.Fatal(err)
		}
		sent++
		sender.Take(nil)
	}
	if !isEnded(stuck) {
		t.Fatalf("stuck was sent %d messages of 4000 bytes and not dropped; want it dropped past %d KiB", sent, queueBytes>>10)
	}
	if sent > queueBytes/4000+1 {
		t.Errorf("stuck was dropped after %d messages of 4000 bytes; want it dropped once they pass %d KiB", sent, queueBytes>>10)
	}
	if st := status.Convert(stuck.EndErr()); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "64 KiB") {
		t.Errorf("stuck ended with %v; want RESOURCE_EXHAUSTED saying how far behind it fell", st)
	}
}

// Telling others about a slow session can overflow their queues too; each
// is dropped and announced, and the order stays gap-free for the rest.
func TestHubDropCascades(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 3)
	a := mustJoin(t, h, "a")                                          // a: welcome, general (a catch-up: not counted)
	b := mustJoin(t, h, "b")                                          // a: +joined b; b: welcome, general
	c := hubJoin(t, h, "c")                                           // a: +joined c; b: +joined c
	if err := h.Send(t.Context(), b, "pre", "", "", ""); err != nil { // a: full; b: 2 of 3
		t.Fatal(err)
	}
	queued(c)
	// c's message overflows a's queue and fills b's; a's drop overflows b's.
	if err := h.Send(t.Context(), c, "m", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if !isEnded(a) || !isEnded(b) {
		t.Fatalf("a ended %v, b ended %v; want both dropped as too slow", isEnded(a), isEnded(b))
	}
	evs := queued(c)
	var summary []string
	for i, ev := range evs {
		if want := uint64(4 + i); ev.GetSeq() != want {
			t.Errorf("c's event %d has seq %d; want %d", i, ev.GetSeq(), want)
		}
		if l := ev.GetUserLeft(); l != nil {
			summary = append(summary, fmt.Sprintf("%s:%s", l.GetUser().GetUsername(), l.GetReason()))
		}
	}
	want := []string{"a:LEAVE_REASON_TOO_SLOW", "b:LEAVE_REASON_TOO_SLOW"}
	if len(evs) != 3 || !slices.Equal(summary, want) {
		t.Errorf("c got %v; want its message then user_left %v", evs, want)
	}
	if n := names(h.Users()); !slices.Equal(n, []string{"c"}) {
		t.Errorf("Users() = %q; want [c]", n)
	}
}

func TestHubShutdown(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 16)
	sessions := []*server.Stream{hubJoin(t, h, "a"), hubJoin(t, h, "b"), hubJoin(t, h, "c")}
	for _, s := range sessions {
		queued(s)
	}
	parked := hubJoin(t, h, "d")
	h.Leave(parked, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	h.Shutdown()
	for _, s := range sessions {
		if !isEnded(s) {
			t.Fatalf("%s not ended by Shutdown", s.User().GetUsername())
		}
		st := status.Convert(s.EndErr())
		if !errors.Is(s.EndErr(), server.ErrShuttingDown) || st.Code() != codes.Unavailable || st.Message() != "server shutting down, reconnect later" {
			t.Errorf("%s ended with %v; want ErrShuttingDown as UNAVAILABLE %q", s.User().GetUsername(), st, "server shutting down, reconnect later")
		}
		queued(s) // d's disconnect came before
		if h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
			t.Errorf("Leave(%s) after Shutdown = true; want false", s.User().GetUsername())
		}
		expectNothingQueued(t, s) // no user_left storm
	}
	if _, err := h.Join(t.Context(), "d", "", 0, netip.Addr{}); !errors.Is(err, server.ErrShuttingDown) || status.Code(err) != codes.Unavailable {
		t.Errorf("Join after Shutdown = %v; want ErrShuttingDown (UNAVAILABLE)", err)
	}
}
