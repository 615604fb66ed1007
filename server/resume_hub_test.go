package server_test

// Tests of resuming a session on a hub driven directly, with no transport
// (resume_test.go has the same over real TCP).

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hubJoined is a session with what it was told at its join.
type hubJoined struct {
	s       *server.Stream
	token   string
	lastSeq uint64 // of the last event taken off its queue
}

func hubJoinKeep(t *testing.T, h *server.Hub, name string) *hubJoined {
	t.Helper()
	s := mustJoin(t, h, name)
	j := &hubJoined{s: s}
	evs := j.take()
	j.token = evs[0].GetWelcome().GetResumeToken()
	return j
}

// take empties the session's queue and remembers the last seq seen, as a
// client does.
func (j *hubJoined) take() []*chatv1.ChatResponse {
	evs := queued(j.s)
	for _, ev := range evs {
		if ev.GetSeq() != 0 {
			j.lastSeq = ev.GetSeq()
		}
	}
	return evs
}

func hubResume(t *testing.T, h *server.Hub, name string, j *hubJoined, lastSeq uint64) *hubJoined {
	t.Helper()
	s, err := h.Join(t.Context(), name, j.token, lastSeq, netip.Addr{})
	if err != nil {
		t.Fatalf("resume as %s = %v; want success", name, err)
	}
	return &hubJoined{s: s, token: j.token, lastSeq: lastSeq}
}

func TestHubResumeGivesEveryMissedEvent(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	mustJoinChannel(t, h, alice.s, "go")
	bob := hubJoinKeep(t, h, "bob")
	mustJoinChannel(t, h, bob.s, "go")
	alice.take()
	bob.take()

	if !h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Fatal("Leave = false")
	}
	if ev := bob.take(); len(ev) != 1 || ev[0].GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED {
		t.Fatalf("bob got %v; want alice's user_left DISCONNECTED at once", ev)
	}
	if got := names(h.Users()); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("Users() while alice is away = %q; want [bob]", got)
	}
	// While alice is away: messages in both her channels, someone joining.
	for _, send := range []struct{ text, ch string }{{"one", "go"}, {"two", ""}} {
		if err := h.Send(t.Context(), bob.s, send.text, send.ch, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	carol := hubJoinKeep(t, h, "carol")
	if err := h.Send(t.Context(), carol.s, "three", "", "", ""); err != nil {
		t.Fatal(err)
	}
	bob.take()

	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	evs := re.take()
	w := evs[0]
	if w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE || w.GetSeq() != alice.lastSeq ||
		len(w.GetWelcome().GetOnlineUsers()) != 0 || w.GetWelcome().GetResumeToken() != alice.token {
		t.Fatalf("resumed welcome = %v; want COMPLETE, seq %d, no catch-up, the same token", w, alice.lastSeq)
	}
	var got []string
	for i, ev := range evs[1:] {
		if ev.GetSeq() != alice.lastSeq+uint64(i)+1 {
			t.Errorf("missed event %d has seq %d; want %d", i, ev.GetSeq(), alice.lastSeq+uint64(i)+1)
		}
		switch {
		case ev.GetMessage() != nil:
			got = append(got, ev.GetMessage().GetText())
		case ev.GetUserJoined() != nil:
			got = append(got, "+"+ev.GetUserJoined().GetUser().GetUsername())
		default:
			got = append(got, ev.String())
		}
	}
	if want := []string{"one", "two", "+carol", "three"}; !slices.Equal(got, want) {
		t.Errorf("alice missed %q; want %q, in order", got, want)
	}

	// The others see alice come back, in each of her channels.
	var back []string
	for _, ev := range bob.take() {
		switch {
		case ev.GetUserJoined() != nil && ev.GetUserJoined().GetResumed():
			back = append(back, "+alice")
		case ev.GetChannelJoined() != nil:
			back = append(back, ev.GetChannelJoined().GetChannel())
		}
	}
	if want := []string{"+alice", "general", "go"}; !slices.Equal(back, want) {
		t.Errorf("bob saw %q; want alice back (resumed) then in general and go", back)
	}
	if got := names(h.Users()); !slices.Equal(got, []string{"bob", "carol", "alice"}) {
		t.Errorf("Users() = %q; want alice back at the end", got)
	}
	// And she goes on, numbered on from there.
	if err := h.Send(t.Context(), bob.s, "welcome back", "go", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := re.take(); len(ev) != 1 || ev[0].GetSeq() != alice.lastSeq+5 {
		t.Errorf("alice's next event = %v; want seq %d", ev, alice.lastSeq+5)
	}
}

func TestHubResumeFromAnEarlierSeqResends(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	bob := hubJoinKeep(t, h, "bob")
	alice.take()
	for _, text := range []string{"a", "b", "c"} {
		if err := h.Send(t.Context(), bob.s, text, "", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	alice.take() // written to the network, but say the last two were lost
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	re := hubResume(t, h, "alice", alice, alice.lastSeq-2)
	evs := re.take()
	if len(evs) != 3 || evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE ||
		evs[1].GetMessage().GetText() != "b" || evs[2].GetMessage().GetText() != "c" || evs[2].GetSeq() != alice.lastSeq {
		t.Errorf("resume from two events back gave %v; want COMPLETE, then b and c again under their seqs", evs)
	}
}

func TestHubResumeTakesOverALiveStream(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	bob := hubJoinKeep(t, h, "bob")
	carol := hubJoinKeep(t, h, "carol")
	alice.take()
	bob.take()
	if err := h.Send(t.Context(), carol.s, "queued but not read", "", "", ""); err != nil {
		t.Fatal(err)
	}
	carol.take()
	bob.take()

	// alice's connection is dead but the server has not noticed: nobody
	// else may take her name, but her token may.
	if _, err := h.Join(t.Context(), "ALICE", "", 0, netip.Addr{}); !errors.Is(err, server.ErrUsernameTaken) {
		t.Errorf("Join(ALICE) without the token = %v; want ErrUsernameTaken", err)
	}
	if _, err := h.Join(t.Context(), "alice", bob.token, 0, netip.Addr{}); !errors.Is(err, server.ErrUsernameTaken) {
		t.Errorf("Join(alice) with bob's token = %v; want ErrUsernameTaken (a token is for its own name)", err)
	}
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	if !isEnded(alice.s) || !errors.Is(alice.s.EndErr(), server.ErrReplaced) || status.Code(alice.s.EndErr()) != codes.Aborted {
		t.Errorf("old stream ended %v with %v; want ended ABORTED (taken over)", isEnded(alice.s), alice.s.EndErr())
	}
	evs := re.take()
	if len(evs) != 2 || evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE || evs[1].GetMessage().GetText() != "queued but not read" {
		t.Errorf("new stream got %v; want COMPLETE and the message the old one never sent", evs)
	}
	expectNothingQueued(t, bob.s) // the others saw nothing happen
	if got := names(h.Users()); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Errorf("Users() = %q; want alice where she was", got)
	}
	// The old stream is out of the hub: its leave changes nothing.
	if h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED) {
		t.Error("Leave on the replaced stream = true; want false")
	}
	if err := h.Send(t.Context(), alice.s, "zombie", "", "", ""); !errors.Is(err, server.ErrNotJoined) {
		t.Errorf("Send on the replaced stream = %v; want ErrNotJoined", err)
	}
	expectNothingQueued(t, bob.s)
}

func TestHubResumeAfterGraceIsIncomplete(t *testing.T) {
	t.Parallel()
	h := newHubWith(t, func(c *server.Config) { c.ResumeGrace = 20 * time.Millisecond })
	alice := hubJoinKeep(t, h, "alice")
	mustJoinChannel(t, h, alice.s, "go")
	alice.take()
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if _, err := h.Join(t.Context(), "alice", "", 0, netip.Addr{}); !errors.Is(err, server.ErrUsernameTaken) {
		t.Errorf("Join(alice) within her grace period = %v; want ErrUsernameTaken (held)", err)
	}
	waitFor(t, "alice's grace period to end", func() bool { return hubNameFree(t, h, "alice") })
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	evs := re.take()
	w := evs[0].GetWelcome()
	if w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || !slices.Equal(names(w.GetOnlineUsers()), []string{"alice"}) ||
		evs[0].GetSeq() != 1 || w.GetResumeToken() == alice.token {
		t.Errorf("late resume welcome = %v; want INCOMPLETE, a fresh catch-up, seq 1, a new token", evs[0])
	}
	if len(evs) != 2 || evs[1].GetChannelJoined().GetChannel() != "general" {
		t.Errorf("late resume got %v; want the welcome and general only (go was forgotten)", evs)
	}
}

// hubNameFree reports whether a plain join of name would succeed now.
func hubNameFree(t *testing.T, h *server.Hub, name string) bool {
	s, err := h.Join(t.Context(), name, "", 0, netip.Addr{})
	if err != nil {
		return false
	}
	h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	return true
}

func TestHubResumeWithTooMuchMissedRebuilds(t *testing.T) {
	t.Parallel()
	h := newHubWith(t, func(c *server.Config) { c.ResumeBuffer = 3 })
	alice := hubJoinKeep(t, h, "alice")
	mustJoinChannel(t, h, alice.s, "go")
	bob := hubJoinKeep(t, h, "bob")
	mustJoinChannel(t, h, bob.s, "go")
	alice.take()
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for _, text := range []string{"1", "2", "3", "4"} {
		if err := h.Send(t.Context(), bob.s, text, "go", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	evs := re.take()
	w := evs[0]
	if w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || w.GetSeq() <= alice.lastSeq ||
		!slices.Equal(names(w.GetWelcome().GetOnlineUsers()), []string{"bob", "alice"}) || w.GetWelcome().GetResumeToken() != alice.token {
		t.Fatalf("welcome = %v; want INCOMPLETE with a fresh catch-up, numbered after %d, the same token", w, alice.lastSeq)
	}
	var channels []string
	for i, ev := range evs[1:] {
		if ev.GetSeq() != w.GetSeq()+uint64(i)+1 {
			t.Errorf("event %d after the welcome has seq %d; want %d", i, ev.GetSeq(), w.GetSeq()+uint64(i)+1)
		}
		if cj := ev.GetChannelJoined(); cj != nil {
			channels = append(channels, cj.GetChannel())
			if cj.GetChannel() == "go" && cj.GetHistoryCount() != 4 {
				t.Errorf("go's catch-up = %v; want its 4 messages as history", cj)
			}
		}
	}
	if !slices.Equal(channels, []string{"general", "go"}) {
		t.Errorf("catch-ups for %q; want general and go: she is still in them", channels)
	}
}

func TestHubLogoutCannotBeResumed(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	if w := re.take()[0].GetWelcome(); w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || w.GetResumeToken() == alice.token {
		t.Errorf("resume after a logout = %v; want INCOMPLETE with a new token", w)
	}
}

func TestHubSlowSessionCanResume(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 4)
	slow := hubJoinKeep(t, h, "slow")
	fast := hubJoinKeep(t, h, "fast")
	for _, text := range []string{"1", "2", "3", "4", "5"} {
		if err := h.Send(t.Context(), fast.s, text, "", "", ""); err != nil {
			t.Fatal(err)
		}
		fast.take()
	}
	if !isEnded(slow.s) {
		t.Fatal("slow not dropped")
	}
	var texts []string
	for _, ev := range slow.take() { // what it had queued: a prefix
		if m := ev.GetMessage(); m != nil {
			texts = append(texts, m.GetText())
		}
	}
	before := len(texts)
	re := hubResume(t, h, "slow", slow, slow.lastSeq)
	evs := re.take()
	if evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("resume after a too-slow drop = %v; want COMPLETE", evs[0])
	}
	for _, ev := range evs[1:] {
		texts = append(texts, ev.GetMessage().GetText())
	}
	if want := []string{"1", "2", "3", "4", "5"}; before == 5 || !slices.Equal(texts, want) {
		t.Errorf("slow got %q before its drop, then %q after resuming; want the rest of %q", texts[:before], texts[before:], want)
	}
}

// Replaying what a session missed does not count against its queue: a
// resume that missed as much as the queue holds goes on with live events.
func TestHubResumeReplayIsNotSlowness(t *testing.T) {
	t.Parallel()
	const queueSize = 4
	h := newHub(t, 10, queueSize)
	alice := hubJoinKeep(t, h, "alice")
	bob := hubJoinKeep(t, h, "bob")
	alice.take()
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for i := range 2 * queueSize {
		if err := h.Send(t.Context(), bob.s, string(rune('a'+i)), "", "", ""); err != nil {
			t.Fatal(err)
		}
		bob.take()
	}
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	if err := h.Send(t.Context(), bob.s, "live", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if isEnded(re.s) {
		t.Fatalf("resumed stream dropped (%v) for replaying %d events with a queue of %d", re.s.EndErr(), 2*queueSize, queueSize)
	}
	evs := re.take()
	if n := len(evs); n != 1+2*queueSize+1 || evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE || evs[n-1].GetMessage().GetText() != "live" {
		t.Errorf("resumed stream got %v; want COMPLETE, %d missed messages, then the live one", evs, 2*queueSize)
	}
}

// A client that kept nothing (a reloaded page) resumes with last_seq 0 and
// gets its session back as a fresh catch-up, in its channels.
func TestHubResumeFromNothingIsAFreshCatchUp(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	mustJoinChannel(t, h, alice.s, "go")
	alice.take()
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	re := hubResume(t, h, "alice", alice, 0)
	evs := re.take()
	var channels []string
	for _, ev := range evs[1:] {
		channels = append(channels, ev.GetChannelJoined().GetChannel())
	}
	if w := evs[0].GetWelcome(); w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || w.GetResumeToken() != alice.token ||
		!slices.Equal(names(w.GetOnlineUsers()), []string{"alice"}) || !slices.Equal(channels, []string{"general", "go"}) {
		t.Errorf("resume from seq 0 gave %v; want INCOMPLETE, the same token, a catch-up, and general and go", evs)
	}
}

// A channel's catch-up (its member list) is not kept for a resume: a
// client that missed one gets a fresh catch-up of everything instead.
func TestHubResumeThatMissedAChannelCatchUpRebuilds(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	before := alice.lastSeq
	mustJoinChannel(t, h, alice.s, "go")
	alice.take() // sent, but say the connection died with it in flight
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	evs := hubResume(t, h, "alice", alice, before).take()
	var channels []string
	for _, ev := range evs[1:] {
		channels = append(channels, ev.GetChannelJoined().GetChannel())
	}
	if evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || !slices.Equal(channels, []string{"general", "go"}) {
		t.Errorf("resume from before a channel catch-up gave %v; want INCOMPLETE and catch-ups of general and go", evs)
	}
	// Past the catch-up, a resume is complete as usual.
	re := hubResume(t, h, "alice", alice, 0)
	re.take()
	h.Leave(re.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if w := hubResume(t, h, "alice", re, re.lastSeq).take()[0]; w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("resume after the catch-up = %v; want COMPLETE", w)
	}
}

// Member counts follow users going offline and coming back; a user who
// comes back is the channel's newest member, as the others saw it.
func TestHubResumeMemberCountsAndOrder(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	alice := hubJoinKeep(t, h, "alice")
	mustJoinChannel(t, h, alice.s, "go")
	bob := hubJoinKeep(t, h, "bob")
	mustJoinChannel(t, h, bob.s, "go")
	alice.take()
	counts := func() string {
		var out []string
		for _, ch := range h.Channels() {
			out = append(out, fmt.Sprintf("%s:%d", ch.GetName(), ch.GetMemberCount()))
		}
		return strings.Join(out, " ")
	}
	if got := counts(); got != "general:2 go:2" {
		t.Fatalf("counts = %q; want general:2 go:2", got)
	}
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if got := counts(); got != "general:1 go:1" {
		t.Errorf("counts with alice away = %q; want general:1 go:1", got)
	}
	hubResume(t, h, "alice", alice, alice.lastSeq)
	if got := counts(); got != "general:2 go:2" {
		t.Errorf("counts with alice back = %q; want general:2 go:2", got)
	}
	carol := mustJoin(t, h, "carol")
	mustJoinChannel(t, h, carol, "go")
	var members []string
	for _, ev := range queued(carol) {
		if cj := ev.GetChannelJoined(); cj.GetChannel() == "go" {
			members = names(cj.GetMembers())
		}
	}
	if !slices.Equal(members, []string{"bob", "alice", "carol"}) {
		t.Errorf("go's members for a newcomer = %q; want [bob alice carol]: alice came back after bob", members)
	}
	h.Leave(carol, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	if got := counts(); got != "general:2 go:2" {
		t.Errorf("counts after carol logged out = %q; want general:2 go:2", got)
	}
}

// The replay is bounded by size too: big messages are dropped from it
// sooner, and a resume that needs them rebuilds.
func TestHubReplayIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	h := newHubWith(t, func(c *server.Config) { c.ResumeBuffer, c.ResumeBufferBytes = 1000, 10_000 })
	alice := hubJoinKeep(t, h, "alice")
	bob := hubJoinKeep(t, h, "bob")
	alice.take()
	h.Leave(alice.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	big := strings.Repeat("x", 3000)
	for range 3 { // about 9,000 bytes: kept
		if err := h.Send(t.Context(), bob.s, big, "", "", ""); err != nil {
			t.Fatal(err)
		}
		bob.take()
	}
	re := hubResume(t, h, "alice", alice, alice.lastSeq)
	if evs := re.take(); evs[0].GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE || len(evs) != 4 {
		t.Fatalf("resume after 9 KB missed = %v; want COMPLETE with the 3 messages", evs)
	}
	h.Leave(re.s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for range 4 { // the oldest no longer fits
		if err := h.Send(t.Context(), bob.s, big, "", "", ""); err != nil {
			t.Fatal(err)
		}
		bob.take()
	}
	if w := hubResume(t, h, "alice", re, re.lastSeq).take()[0]; w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE {
		t.Errorf("resume after 12 KB missed with a 10 KB budget = %v; want INCOMPLETE", w)
	}
}
