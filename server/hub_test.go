package server_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// The hub queues events synchronously, under its lock, so these tests read
// queues without waiting: whatever an operation queues is there when it
// returns.

func hubJoin(t *testing.T, h *server.Hub, name string) *server.Session {
	t.Helper()
	s, err := h.Join(name, "", 0)
	if err != nil {
		t.Fatalf("Join(%q) = %v; want success", name, err)
	}
	return s
}

// queued takes every event waiting on s's queue.
func queued(s *server.Session) []*chatv1.ChatResponse {
	var evs []*chatv1.ChatResponse
	for _, ev := range s.Take(nil) {
		evs = append(evs, ev.Response())
	}
	return evs
}

// take takes the one event waiting on s's queue.
func take(t *testing.T, s *server.Session) *chatv1.ChatResponse {
	t.Helper()
	evs := queued(s)
	if len(evs) != 1 {
		t.Fatalf("%s has %d events queued: %v; want exactly 1", s.User().GetUsername(), len(evs), evs)
	}
	return evs[0]
}

func expectNothingQueued(t *testing.T, s *server.Session) {
	t.Helper()
	if evs := queued(s); len(evs) > 0 {
		t.Fatalf("%s has %d events queued: %v; want none", s.User().GetUsername(), len(evs), evs)
	}
}

func isEnded(s *server.Session) bool {
	select {
	case <-s.Ended():
		return true
	default:
		return false
	}
}

func TestHubJoinWelcomesWithSnapshotAndTellsOthers(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)

	alice := hubJoin(t, h, "Alice")
	w := take(t, alice)
	if w.GetWelcome() == nil || w.GetSeq() != 1 {
		t.Fatalf("alice's first event = %v; want a welcome with seq 1", w)
	}
	if got := w.GetWelcome().GetYou().GetUsername(); got != "Alice" {
		t.Errorf("welcome.you = %q; want %q (the name as given)", got, "Alice")
	}
	if got := names(w.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"Alice"}) {
		t.Errorf("alice's welcome lists %q; want [Alice]", got)
	}

	bob := hubJoin(t, h, "bob")
	joined := take(t, alice)
	if joined.GetUserJoined().GetUser().GetUsername() != "bob" || joined.GetSeq() != 2 {
		t.Fatalf("alice got %v; want user_joined bob with seq 2", joined)
	}
	w = take(t, bob) // the welcome only: bob's own join is in its snapshot
	if w.GetWelcome() == nil || w.GetSeq() != 2 {
		t.Fatalf("bob got %v; want only a welcome with seq 2 (its own join's seq)", w)
	}
	if got := names(w.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"Alice", "bob"}) {
		t.Errorf("bob's welcome lists %q; want [Alice bob] in join order", got)
	}
	if !proto.Equal(w.GetWelcome().GetYou(), joined.GetUserJoined().GetUser()) {
		t.Errorf("bob's welcome.you %v differs from the user_joined others saw %v", w.GetWelcome().GetYou(), joined.GetUserJoined().GetUser())
	}
	if w.GetWelcome().GetYou().GetJoinTime() == nil || w.GetTime() == nil {
		t.Errorf("welcome %v lacks a join time or event time", w)
	}
}

func TestHubUsersInJoinOrder(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)
	a := hubJoin(t, h, "a")
	hubJoin(t, h, "b")
	hubJoin(t, h, "c")
	if got := names(h.Users()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Users() = %q; want [a b c]", got)
	}
	if !h.Leave(a, chatv1.LeaveReason_LEAVE_REASON_LOGOUT) {
		t.Fatal("Leave(a) = false; want true for an online session")
	}
	hubJoin(t, h, "A") // a's name is free again, and A goes to the end
	if got := names(h.Users()); !slices.Equal(got, []string{"b", "c", "A"}) {
		t.Fatalf("Users() after a left and A joined = %q; want [b c A]", got)
	}
}

func TestHubUsernamesUniqueIgnoringCase(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)
	alice := hubJoin(t, h, "Alice")
	for _, name := range []string{"Alice", "alice", "ALICE", "ａｌｉｃｅ"} {
		_, err := h.Join(name, "", 0)
		if !errors.Is(err, server.ErrUsernameTaken) {
			t.Errorf("Join(%q) with Alice online = %v; want ErrUsernameTaken", name, err)
		}
		if err != nil && server.Status(err).Code() != codes.AlreadyExists {
			t.Errorf("Join(%q) status = %v; want ALREADY_EXISTS", name, server.Status(err))
		}
	}
	h.Leave(alice, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	hubJoin(t, h, "alice")
}

func TestHubRefusedJoinsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	h := newHub(2, 16)
	a := hubJoin(t, h, "a")
	hubJoin(t, h, "b")
	queued(a)

	for _, tc := range []struct {
		name string
		want error
	}{
		{"", server.ErrInvalidUsername},
		{"has space", server.ErrInvalidUsername},
		{strings.Repeat("x", 33), server.ErrInvalidUsername},
		{"B", server.ErrUsernameTaken},
		{"c", server.ErrServerFull},
	} {
		s, err := h.Join(tc.name, "", 0)
		if !errors.Is(err, tc.want) || s != nil {
			t.Errorf("Join(%q) = %v, %v; want nil, %v", tc.name, s, err, tc.want)
		}
		var e *server.Error
		if !errors.As(err, &e) || e.Msg == "" {
			t.Errorf("Join(%q) error %#v is not a *server.Error with a message for the client", tc.name, err)
		}
	}
	expectNothingQueued(t, a)

	// Refusals took no seq: the next event follows b's join (seq 2).
	if err := h.Send(a, "hi", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, a); ev.GetSeq() != 3 {
		t.Fatalf("message after refused joins has seq %d; want 3 (no gap)", ev.GetSeq())
	}
	if got := server.Status(func() error { _, err := h.Join("c", "", 0); return err }()).Code(); got != codes.ResourceExhausted {
		t.Errorf("full server status = %v; want RESOURCE_EXHAUSTED", got)
	}
}

func TestHubSendBroadcastsToEveryoneIncludingSender(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)
	alice := hubJoin(t, h, "Alice")
	bob := hubJoin(t, h, "bob")
	queued(alice)
	queued(bob)

	if err := h.Send(alice, "  hello bob \n", "", "", "c1"); err != nil {
		t.Fatalf("Send = %v", err)
	}
	mine, theirs := take(t, alice), take(t, bob)
	if !proto.Equal(mine, theirs) {
		t.Errorf("sender got %v, other got %v; want the same event", mine, theirs)
	}
	m := mine.GetMessage()
	if m.GetSender() != "Alice" || m.GetText() != "hello bob" || m.GetClientId() != "c1" || m.GetId() == "" || mine.GetSeq() != 3 {
		t.Errorf("message = %v (seq %d); want sender Alice, text trimmed to %q, client_id c1, an id, seq 3", m, mine.GetSeq(), "hello bob")
	}

	if err := h.Send(bob, "again", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if id2 := take(t, alice).GetMessage().GetId(); id2 == m.GetId() {
		t.Errorf("two messages share id %q", id2)
	}
	queued(bob)

	for _, text := range []string{"", "   ", "\x00\x07", strings.Repeat("x", server.MaxTextBytes+1), "\xff"} {
		err := h.Send(alice, text, "", "", "bad")
		if !errors.Is(err, server.ErrInvalidText) {
			t.Errorf("Send(%q) = %v; want ErrInvalidText", text, err)
		}
	}
	expectNothingQueued(t, alice)
	expectNothingQueued(t, bob)
}

func TestHubLeave(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	c := hubJoin(t, h, "c")
	queued(a)
	queued(b)
	queued(c)

	// A logout is the leaver's last event too; a disconnect is not sent to
	// the one who is gone.
	if !h.Leave(a, chatv1.LeaveReason_LEAVE_REASON_LOGOUT) {
		t.Fatal("Leave(a) = false; want true")
	}
	for _, s := range []*server.Session{a, b, c} {
		ev := take(t, s)
		if ev.GetUserLeft().GetUser().GetUsername() != "a" || ev.GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_LOGOUT || ev.GetSeq() != 4 {
			t.Errorf("%s got %v; want user_left a LOGOUT seq 4", s.User().GetUsername(), ev)
		}
	}
	if !h.Leave(b, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Fatal("Leave(b) = false; want true")
	}
	expectNothingQueued(t, b)
	if ev := take(t, c); ev.GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED || ev.GetSeq() != 5 {
		t.Errorf("c got %v; want user_left b DISCONNECTED seq 5", ev)
	}

	// Leaving twice does nothing, and a gone session cannot send.
	if h.Leave(a, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Error("second Leave(a) = true; want false")
	}
	if err := h.Send(a, "hello?", "", "", ""); !errors.Is(err, server.ErrNotJoined) {
		t.Errorf("Send from a gone session = %v; want ErrNotJoined", err)
	}
	expectNothingQueued(t, c)
	if got := names(h.Users()); !slices.Equal(got, []string{"c"}) {
		t.Errorf("Users() = %q; want [c]", got)
	}
	if isEnded(a) || isEnded(b) {
		t.Error("Ended closed for sessions that left by themselves; it is only for the hub ending a session")
	}
}

func TestHubRejectGoesToOneSessionWithSeqZero(t *testing.T) {
	t.Parallel()
	h := newHub(10, 16)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	queued(a)

	queued(b)
	h.Reject(b, "x1", &server.Error{Kind: server.ErrRateLimited, Msg: "slow down"})
	ev := take(t, b)
	r := ev.GetRejected()
	if ev.GetSeq() != 0 || r.GetClientId() != "x1" || codes.Code(r.GetCode()) != codes.ResourceExhausted || r.GetReason() != "slow down" {
		t.Errorf("rejection = %v (seq %d); want seq 0, client_id x1, code RESOURCE_EXHAUSTED, reason %q", r, ev.GetSeq(), "slow down")
	}
	expectNothingQueued(t, a)

	// The global order has no hole where the rejection was.
	if err := h.Send(a, "next", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, b); ev.GetSeq() != 3 {
		t.Errorf("next broadcast has seq %d; want 3", ev.GetSeq())
	}
	h.Leave(b, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	h.Reject(b, "x2", &server.Error{Kind: server.ErrInvalidText, Msg: "no"})
	expectNothingQueued(t, b)
}

func TestHubDropsSlowSession(t *testing.T) {
	t.Parallel()
	const queueSize = 2
	h := newHub(10, queueSize)
	slow := hubJoin(t, h, "slow") // queue: welcome
	fast := hubJoin(t, h, "fast") // slow's queue: welcome, user_joined: full
	if got := take(t, fast).GetSeq(); got != 2 {
		t.Fatalf("fast's welcome seq = %d; want 2", got)
	}

	if err := h.Send(fast, "one", "", "", ""); err != nil { // overflows slow's queue
		t.Fatal(err)
	}
	evs := queued(fast)
	if len(evs) != 2 || evs[0].GetMessage().GetText() != "one" || evs[0].GetSeq() != 3 ||
		evs[1].GetUserLeft().GetUser().GetUsername() != "slow" ||
		evs[1].GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW || evs[1].GetSeq() != 4 {
		t.Fatalf("fast got %v; want message seq 3, then user_left slow TOO_SLOW seq 4", evs)
	}

	if !isEnded(slow) {
		t.Fatal("slow's Ended is open; want it closed when the hub drops it")
	}
	err := slow.EndErr()
	if !errors.Is(err, server.ErrTooSlow) || server.Status(err).Code() != codes.ResourceExhausted {
		t.Errorf("slow.EndErr() = %v (status %v); want ErrTooSlow, RESOURCE_EXHAUSTED", err, server.Status(err).Code())
	}
	// What slow did get is a gap-free prefix: nothing after the overflow.
	got := queued(slow)
	if len(got) != queueSize || got[0].GetWelcome() == nil || got[1].GetSeq() != 2 {
		t.Errorf("slow's queue = %v; want its welcome and bob's join, nothing after", got)
	}
	if n := names(h.Users()); !slices.Equal(n, []string{"fast"}) {
		t.Errorf("Users() = %q; want [fast]", n)
	}
	if h.Leave(slow, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Error("Leave(slow) after the hub dropped it = true; want false (no second user_left)")
	}
	if err := h.Send(slow, "still here?", "", "", ""); !errors.Is(err, server.ErrNotJoined) {
		t.Errorf("Send from dropped session = %v; want ErrNotJoined", err)
	}

	// fast goes on with no gap.
	if err := h.Send(fast, "two", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, fast); ev.GetSeq() != 5 {
		t.Errorf("next event seq = %d; want 5", ev.GetSeq())
	}
	hubJoin(t, h, "slow") // the name is free
}

// Telling others about a slow session can overflow their queues too; each
// is dropped and announced, and the order stays gap-free for the rest.
func TestHubDropCascades(t *testing.T) {
	t.Parallel()
	h := newHub(10, 3)
	a := hubJoin(t, h, "a") // a: welcome
	b := hubJoin(t, h, "b") // a: +joined b; b: welcome
	c := hubJoin(t, h, "c") // a: +joined c (full); b: +joined c
	queued(c)
	if err := h.Send(c, "m", "", "", ""); err != nil { // a overflows; b full
		t.Fatal(err)
	}
	// Dropping a announces it; b overflows on that and is dropped too.
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
	h := newHub(10, 16)
	sessions := []*server.Session{hubJoin(t, h, "a"), hubJoin(t, h, "b"), hubJoin(t, h, "c")}
	for _, s := range sessions {
		queued(s)
	}
	h.Shutdown()
	for _, s := range sessions {
		if !isEnded(s) {
			t.Fatalf("%s not ended by Shutdown", s.User().GetUsername())
		}
		st := server.Status(s.EndErr())
		if !errors.Is(s.EndErr(), server.ErrShuttingDown) || st.Code() != codes.Unavailable || st.Message() != "server shutting down, reconnect later" {
			t.Errorf("%s ended with %v; want ErrShuttingDown as UNAVAILABLE %q", s.User().GetUsername(), st, "server shutting down, reconnect later")
		}
		expectNothingQueued(t, s) // no user_left storm
		if h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
			t.Errorf("Leave(%s) after Shutdown = true; want false", s.User().GetUsername())
		}
	}
	if u := h.Users(); len(u) != 0 {
		t.Errorf("Users() after Shutdown = %q; want none", names(u))
	}
	if _, err := h.Join("d", "", 0); !errors.Is(err, server.ErrShuttingDown) || server.Status(err).Code() != codes.Unavailable {
		t.Errorf("Join after Shutdown = %v; want ErrShuttingDown (UNAVAILABLE)", err)
	}
}

// TestHubConcurrentOrder runs joins, sends and leaves from many goroutines
// at once and checks what every session received: its welcome, then every
// later broadcast exactly once, in seq order, each seq the same event for
// everyone; and its snapshot plus deltas equals Users() at the end.
func TestHubConcurrentOrder(t *testing.T) {
	t.Parallel()
	const users, msgs = 24, 10
	// Queues big enough for everything: this test is about order, not
	// slowness. Total events: 24 joins + 240 messages + 8 leaves.
	h := newHub(users, 1024)

	sessions := make([]*server.Session, users)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range users {
		wg.Go(func() {
			<-start
			name := fmt.Sprintf("u%02d", i)
			s, err := h.Join(name, "", 0)
			if err != nil {
				t.Errorf("Join(%q) = %v", name, err)
				return
			}
			sessions[i] = s
			for j := range msgs {
				if err := h.Send(s, fmt.Sprintf("%s-%d", name, j), "", "", ""); err != nil {
					t.Errorf("Send from %s = %v", name, err)
				}
			}
			if i%3 == 0 {
				h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	bySeq := map[uint64]*chatv1.ChatResponse{}
	seen := map[uint64]bool{} // every seq some session saw, as an event or as its welcome
	for i, s := range sessions {
		evs := queued(s)
		if len(evs) > 0 {
			seen[evs[0].GetSeq()] = true
		}
		name := s.User().GetUsername()
		online, err := applyEvents(evs, bySeq)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if i%3 == 0 {
			last := evs[len(evs)-1].GetUserLeft()
			if last.GetUser().GetUsername() != name || last.GetReason() != chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
				t.Errorf("%s logged out but its last event is %v; want its own user_left LOGOUT", name, evs[len(evs)-1])
			}
			continue
		}
		if want := names(h.Users()); !slices.Equal(online, want) {
			t.Errorf("%s's welcome plus deltas gives %q; Users() is %q", name, online, want)
		}
		var mine []string
		for _, ev := range evs {
			if m := ev.GetMessage(); m.GetSender() == name {
				mine = append(mine, m.GetText())
			}
		}
		if len(mine) != msgs {
			t.Errorf("%s got %d of its own %d messages back: %q", name, len(mine), msgs, mine)
		}
	}
	for seq := range bySeq {
		seen[seq] = true
	}
	total := users + users*msgs + (users+2)/3
	for seq := 1; seq <= total; seq++ {
		if !seen[uint64(seq)] {
			t.Errorf("no session saw seq %d; want every one of 1..%d (joins, messages, leaves)", seq, total)
		}
	}
	if len(seen) != total {
		t.Errorf("sessions saw %d distinct seqs; want %d", len(seen), total)
	}
}

// newHub returns a hub with the default configuration but for its session
// and queue limits.
func newHub(maxSessions, queueSize int) *server.Hub {
	cfg := server.DefaultConfig()
	cfg.MaxSessions, cfg.QueueSize = maxSessions, queueSize
	return server.NewHub(cfg)
}
