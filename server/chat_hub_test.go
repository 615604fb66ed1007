package server_test

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
	"google.golang.org/protobuf/proto"
)

// The hub queues events synchronously, under its lock, so these tests read
// queues without waiting: whatever an operation queues is there when it
// returns.

// newHub returns a hub with the default configuration but for its session
// and queue limits.
func newHub(t testing.TB, maxSessions, queueSize int) *server.Hub {
	return newHubWith(t, func(c *server.Config) { c.MaxSessions, c.QueueSize = maxSessions, queueSize })
}

// newHubWith returns a running hub with the default configuration changed
// by edit; the test's cleanup stops it.
func newHubWith(t testing.TB, edit func(*server.Config)) *server.Hub {
	t.Helper()
	cfg := server.DefaultConfig()
	edit(&cfg)
	h := server.NewHub(cfg)
	t.Cleanup(h.Shutdown)
	return h
}

// mustJoin joins name and leaves its events queued.
func mustJoin(t *testing.T, h *server.Hub, name string) *server.Session {
	t.Helper()
	s, err := h.Join(t.Context(), name, "", 0, netip.Addr{})
	if err != nil {
		t.Fatalf("Join(%q) = %v; want success", name, err)
	}
	return s
}

// hubJoin joins name and takes what a join queues for it: the welcome,
// then general's channel_joined and history. It returns the welcome.
func hubJoin(t *testing.T, h *server.Hub, name string) *server.Session {
	t.Helper()
	s := mustJoin(t, h, name)
	evs := queued(s)
	if len(evs) < 2 || evs[0].GetWelcome() == nil || evs[1].GetChannelJoined().GetChannel() != "general" ||
		len(evs) != 2+int(evs[1].GetChannelJoined().GetHistoryCount()) {
		t.Fatalf("%s's first events = %v; want a welcome, general's channel_joined and its history", name, evs)
	}
	return s
}

// queued takes every event waiting on s's queue.
func queued(s *server.Session) []*chatv1.ChatResponse {
	var evs []*chatv1.ChatResponse
	for _, d := range s.Take(nil) {
		evs = append(evs, d.Response())
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

// sameEvent reports whether two sessions' copies are the same event: equal
// but for the seq, which each session numbers its own way.
func sameEvent(a, b *chatv1.ChatResponse) bool {
	a, b = proto.CloneOf(a), proto.CloneOf(b)
	a.Seq, b.Seq = 0, 0
	return proto.Equal(a, b)
}

func TestHubJoinWelcomesWithSnapshotAndTellsOthers(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 16)

	alice := mustJoin(t, h, "Alice")
	evs := queued(alice)
	if len(evs) != 2 || evs[0].GetWelcome() == nil || evs[0].GetSeq() != 1 {
		t.Fatalf("alice's events = %v; want a welcome with seq 1, then general's channel_joined", evs)
	}
	w := evs[0].GetWelcome()
	aliceToken := w.GetResumeToken()
	if got := w.GetYou().GetUsername(); got != "Alice" {
		t.Errorf("welcome.you = %q; want %q (the name as given)", got, "Alice")
	}
	if got := names(w.GetOnlineUsers()); !slices.Equal(got, []string{"Alice"}) {
		t.Errorf("alice's welcome lists %q; want [Alice]", got)
	}
	if len(aliceToken) < 40 || w.GetRecovery() != chatv1.Recovery_RECOVERY_UNSPECIFIED {
		t.Errorf("welcome = %v; want a resume token of 256 bits and no recovery", w)
	}
	cj := evs[1].GetChannelJoined()
	if cj.GetChannel() != "general" || cj.GetUser().GetUsername() != "Alice" || evs[1].GetSeq() != 2 ||
		!slices.Equal(names(cj.GetMembers()), []string{"Alice"}) || cj.GetHistoryCount() != 0 {
		t.Errorf("alice's second event = %v; want channel_joined general, seq 2, members [Alice], no history", evs[1])
	}

	bob := mustJoin(t, h, "bob")
	joined := take(t, alice)
	if joined.GetUserJoined().GetUser().GetUsername() != "bob" || joined.GetUserJoined().GetResumed() || joined.GetSeq() != 3 {
		t.Fatalf("alice got %v; want user_joined bob, not resumed, with seq 3", joined)
	}
	evs = queued(bob) // bob's own join is in its snapshot: no user_joined
	if len(evs) != 2 || evs[0].GetWelcome() == nil || evs[0].GetSeq() != 1 || evs[1].GetChannelJoined() == nil || evs[1].GetSeq() != 2 {
		t.Fatalf("bob got %v; want only a welcome (seq 1) and general's channel_joined (seq 2)", evs)
	}
	w = evs[0].GetWelcome()
	if got := names(w.GetOnlineUsers()); !slices.Equal(got, []string{"Alice", "bob"}) {
		t.Errorf("bob's welcome lists %q; want [Alice bob] in join order", got)
	}
	if got := names(evs[1].GetChannelJoined().GetMembers()); !slices.Equal(got, []string{"Alice", "bob"}) {
		t.Errorf("bob's general members = %q; want [Alice bob]", got)
	}
	if !proto.Equal(w.GetYou(), joined.GetUserJoined().GetUser()) {
		t.Errorf("bob's welcome.you %v differs from the user_joined others saw %v", w.GetYou(), joined.GetUserJoined().GetUser())
	}
	if w.GetYou().GetJoinTime() == nil || evs[0].GetTime() == nil {
		t.Errorf("welcome %v lacks a join time or event time", evs[0])
	}
	if w.GetResumeToken() == aliceToken {
		t.Error("alice and bob have the same resume token")
	}
}

func TestHubUsersInJoinOrder(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 16)
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
	h := newHubWith(t, func(c *server.Config) { c.ResumeGrace = 0 })
	alice := hubJoin(t, h, "Alice")
	for _, name := range []string{"Alice", "alice", "ALICE", "ａｌｉｃｅ"} {
		_, err := h.Join(t.Context(), name, "", 0, netip.Addr{})
		if !errors.Is(err, server.ErrUsernameTaken) {
			t.Errorf("Join(%q) with Alice online = %v; want ErrUsernameTaken", name, err)
		}
		if err != nil && status.Code(err) != codes.AlreadyExists {
			t.Errorf("Join(%q) status = %v; want ALREADY_EXISTS", name, status.Convert(err))
		}
	}
	// With resuming off, a disconnect frees the name at once.
	h.Leave(alice, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	hubJoin(t, h, "alice")
}

func TestHubRefusedJoinsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	h := newHub(t, 2, 16)
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
		s, err := h.Join(t.Context(), tc.name, "", 0, netip.Addr{})
		if !errors.Is(err, tc.want) || s != nil {
			t.Errorf("Join(%q) = %v, %v; want nil, %v", tc.name, s, err, tc.want)
		}
		var e *server.Error
		if !errors.As(err, &e) || e.Msg == "" {
			t.Errorf("Join(%q) error %#v is not a *server.Error with a message for the client", tc.name, err)
		}
	}
	expectNothingQueued(t, a)

	// Refusals took no seq: a's next event follows b's join (seq 3).
	if err := h.Send(t.Context(), a, "hi", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, a); ev.GetSeq() != 4 {
		t.Fatalf("message after refused joins has seq %d; want 4 (no gap)", ev.GetSeq())
	}
	if got := status.Code(func() error { _, err := h.Join(t.Context(), "c", "", 0, netip.Addr{}); return err }()); got != codes.ResourceExhausted {
		t.Errorf("full server status = %v; want RESOURCE_EXHAUSTED", got)
	}
}

func TestHubSendReachesEveryoneInGeneralIncludingSender(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 16)
	alice := hubJoin(t, h, "Alice")
	bob := hubJoin(t, h, "bob")
	queued(alice)

	if err := h.Send(t.Context(), alice, "  hello bob \n", "", "", "c1"); err != nil {
		t.Fatalf("Send = %v", err)
	}
	mine, theirs := take(t, alice), take(t, bob)
	if !sameEvent(mine, theirs) {
		t.Errorf("sender got %v, other got %v; want the same event", mine, theirs)
	}
	m := mine.GetMessage()
	if m.GetSender() != "Alice" || m.GetText() != "hello bob" || m.GetClientId() != "c1" || m.GetId() == "" ||
		m.GetChannel() != "general" || m.GetRecipient() != "" || mine.GetSeq() != 4 || theirs.GetSeq() != 3 || mine.GetHistory() {
		t.Errorf("message = %v (seqs %d, %d); want sender Alice, text trimmed to %q, client_id c1, an id, channel general, seqs 4 and 3, not history",
			m, mine.GetSeq(), theirs.GetSeq(), "hello bob")
	}

	if err := h.Send(t.Context(), bob, "again", "general", "", ""); err != nil {
		t.Fatal(err)
	}
	if id2 := take(t, alice).GetMessage().GetId(); id2 == m.GetId() {
		t.Errorf("two messages share id %q", id2)
	}
	queued(bob)

	for _, text := range []string{"", "   ", "\x00\x07", strings.Repeat("x", server.MaxTextBytes+1), "\xff"} {
		err := h.Send(t.Context(), alice, text, "", "", "bad")
		if !errors.Is(err, server.ErrInvalidText) {
			t.Errorf("Send(%q) = %v; want ErrInvalidText", text, err)
		}
	}
	expectNothingQueued(t, alice)
	expectNothingQueued(t, bob)
}

func TestHubLeave(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 16)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	c := hubJoin(t, h, "c")
	queued(a)
	queued(b)

	// A logout is the leaver's last event too; a disconnect is not sent to
	// the one who is gone.
	if !h.Leave(a, chatv1.LeaveReason_LEAVE_REASON_LOGOUT) {
		t.Fatal("Leave(a) = false; want true")
	}
	for _, s := range []*server.Session{a, b, c} {
		ev := take(t, s)
		if ev.GetUserLeft().GetUser().GetUsername() != "a" || ev.GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_LOGOUT || ev.GetSeq() == 0 {
			t.Errorf("%s got %v; want user_left a LOGOUT with a seq", s.User().GetUsername(), ev)
		}
	}
	if !h.Leave(b, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Fatal("Leave(b) = false; want true")
	}
	expectNothingQueued(t, b)
	if ev := take(t, c); ev.GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED || ev.GetSeq() != 4 {
		t.Errorf("c got %v; want user_left b DISCONNECTED seq 4", ev)
	}

	// Leaving twice does nothing, and a gone session cannot send.
	if h.Leave(a, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Error("second Leave(a) = true; want false")
	}
	if err := h.Send(t.Context(), a, "hello?", "", "", ""); !errors.Is(err, server.ErrNotJoined) {
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
	h := newHub(t, 10, 16)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	queued(a)

	h.Reject(b, "x1", &server.Error{Kind: server.ErrRateLimited, Msg: "slow down"})
	ev := take(t, b)
	r := ev.GetRejected()
	if ev.GetSeq() != 0 || r.GetClientId() != "x1" || codes.Code(r.GetCode()) != codes.ResourceExhausted || r.GetReason() != "slow down" {
		t.Errorf("rejection = %v (seq %d); want seq 0, client_id x1, code RESOURCE_EXHAUSTED, reason %q", r, ev.GetSeq(), "slow down")
	}
	expectNothingQueued(t, a)

	// b's numbering has no hole where the rejection was.
	if err := h.Send(t.Context(), a, "next", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, b); ev.GetSeq() != 3 {
		t.Errorf("next event has seq %d; want 3", ev.GetSeq())
	}
	h.Leave(b, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	h.Reject(b, "x2", &server.Error{Kind: server.ErrInvalidText, Msg: "no"})
	expectNothingQueued(t, b)
}

func TestHubDropsSlowSession(t *testing.T) {
	t.Parallel()
	const queueSize = 2
	h := newHub(t, 10, queueSize)
	slow := mustJoin(t, h, "slow")                                       // queue: welcome, channel_joined (a snapshot: not counted)
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
func TestHubDropsSlowSessionByBytes(t *testing.T) {
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
	a := mustJoin(t, h, "a")                                          // a: welcome, general (a snapshot: not counted)
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
	sessions := []*server.Session{hubJoin(t, h, "a"), hubJoin(t, h, "b"), hubJoin(t, h, "c")}
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
