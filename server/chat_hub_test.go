package server_test

// Tests of the chat's basics on a hub driven directly, with no transport:
// joining, messages, leaving, answers to one session (chat_test.go has the
// same over real TCP).

import (
	"errors"
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

func TestHubJoinWelcomesWithCatchUpAndTellsOthers(t *testing.T) {
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
	evs = queued(bob) // bob's own join is in its catch-up: no user_joined
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
	for _, s := range []*server.Stream{a, b, c} {
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
