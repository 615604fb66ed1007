package server_test

// Tests of channels on a hub driven directly, with no transport: joining,
// sending, leaving, listing, the limits, and channel catch-ups
// (channel_test.go has the same over real TCP).

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHubChannelJoinSendLeave(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	c := hubJoin(t, h, "c")
	queued(a)
	queued(b)

	if err := h.JoinChannel(t.Context(), a, "#Go"); err != nil {
		t.Fatalf("JoinChannel(a, #Go) = %v", err)
	}
	evs := queued(a)
	if len(evs) != 1 || evs[0].GetChannelJoined().GetChannel() != "Go" || !slices.Equal(names(evs[0].GetChannelJoined().GetMembers()), []string{"a"}) {
		t.Fatalf("a got %v; want its channel_joined Go with members [a]", evs)
	}
	expectNothingQueued(t, b) // not a member: hears nothing

	if err := h.JoinChannel(t.Context(), b, "go"); err != nil { // same channel, any case
		t.Fatalf("JoinChannel(b, go) = %v", err)
	}
	if ev := take(t, a); ev.GetChannelJoined().GetChannel() != "Go" || ev.GetChannelJoined().GetUser().GetUsername() != "b" || len(ev.GetChannelJoined().GetMembers()) != 0 {
		t.Errorf("a got %v; want channel_joined Go b, without members", ev)
	}
	if ev := take(t, b); !slices.Equal(names(ev.GetChannelJoined().GetMembers()), []string{"a", "b"}) || ev.GetChannelJoined().GetChannel() != "Go" {
		t.Errorf("b got %v; want channel_joined Go (as its creator wrote it) with members [a b]", ev)
	}

	// Messages reach members only.
	if err := h.Send(t.Context(), a, "gophers!", "GO", "", "m1"); err != nil {
		t.Fatalf("Send to GO = %v", err)
	}
	for _, s := range []*server.Stream{a, b} {
		if m := take(t, s).GetMessage(); m.GetChannel() != "Go" || m.GetText() != "gophers!" {
			t.Errorf("%s got %v; want the message in Go", s.User().GetUsername(), m)
		}
	}
	expectNothingQueued(t, c)

	// Refusals.
	for _, tc := range []struct {
		what string
		err  error
		kind error
	}{
		{"c sends to Go, not a member", h.Send(t.Context(), c, "hi", "go", "", ""), server.ErrNotInChannel},
		{"send to a channel nobody made", h.Send(t.Context(), c, "hi", "nowhere", "", ""), server.ErrNotFound},
		{"send to a bad name", h.Send(t.Context(), c, "hi", "no way", "", ""), server.ErrInvalidChannel},
		{"send to a channel and a user", h.Send(t.Context(), a, "hi", "go", "b", ""), server.ErrInvalidRequest},
		{"join twice", h.JoinChannel(t.Context(), a, "GO"), server.ErrAlreadyInChannel},
		{"join a bad name", h.JoinChannel(t.Context(), a, "a b"), server.ErrInvalidChannel},
		{"leave a channel c is not in", h.LeaveChannel(t.Context(), c, "go"), server.ErrNotInChannel},
		{"leave a channel nobody made", h.LeaveChannel(t.Context(), c, "nowhere"), server.ErrNotInChannel},
	} {
		if !errors.Is(tc.err, tc.kind) {
			t.Errorf("%s: %v; want %v", tc.what, tc.err, tc.kind)
		}
	}
	expectNothingQueued(t, a)
	expectNothingQueued(t, c)

	// Leaving: every member, the leaver included, hears of it.
	if err := h.LeaveChannel(t.Context(), b, "#go"); err != nil {
		t.Fatalf("LeaveChannel = %v", err)
	}
	for _, s := range []*server.Stream{a, b} {
		if l := take(t, s).GetChannelLeft(); l.GetChannel() != "Go" || l.GetUser().GetUsername() != "b" {
			t.Errorf("%s got %v; want channel_left Go b", s.User().GetUsername(), l)
		}
	}
	if err := h.Send(t.Context(), b, "still?", "go", "", ""); !errors.Is(err, server.ErrNotInChannel) {
		t.Errorf("send after leaving = %v; want ErrNotInChannel", err)
	}
	// Leaving general is allowed; general's messages stop.
	if err := h.LeaveChannel(t.Context(), c, "general"); err != nil {
		t.Fatalf("LeaveChannel(general) = %v", err)
	}
	queued(a)
	queued(b)
	queued(c)
	if err := h.Send(t.Context(), a, "general news", "", "", ""); err != nil {
		t.Fatal(err)
	}
	expectNothingQueued(t, c)

	got := map[string]uint32{}
	for _, ch := range h.Channels() {
		got[ch.GetName()] = ch.GetMemberCount()
	}
	if len(got) != 2 || got["general"] != 2 || got["Go"] != 1 {
		t.Errorf("Channels() = %v; want general 2, Go 1", got)
	}

	// A user who goes offline leaves every list, with no channel_left.
	queued(a)
	h.Leave(b, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	if ev := take(t, a); ev.GetUserLeft() == nil {
		t.Errorf("a got %v; want only user_left b", ev)
	}
}

func TestHubListChannelsIsAnAnswer(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	queued(a)
	for _, name := range []string{"Zeta", "Alpha", "mid"} {
		if err := h.JoinChannel(t.Context(), b, name); err != nil {
			t.Fatal(err)
		}
	}
	queued(b)
	h.ListChannels(a, "q1")
	ev := take(t, a)
	var list []string
	for _, ch := range ev.GetChannelList().GetChannels() {
		list = append(list, fmt.Sprintf("%s:%d", ch.GetName(), ch.GetMemberCount()))
	}
	if ev.GetSeq() != 0 || ev.GetChannelList().GetClientId() != "q1" || !slices.Equal(list, []string{"Alpha:1", "general:2", "mid:1", "Zeta:1"}) {
		t.Errorf("a got %v (%q); want channel_list q1 with seq 0 and [Alpha:1 general:2 mid:1 Zeta:1], by name whatever the case", ev, list)
	}
	expectNothingQueued(t, b)
}

func TestHubChannelLimits(t *testing.T) {
	t.Parallel()
	h := newHubWith(t, func(c *server.Config) { c.MaxChannels, c.MaxChannelsPerUser = 3, 3 })
	a := hubJoin(t, h, "a")
	b := hubJoin(t, h, "b")
	mustJoinChannel(t, h, a, "one")
	mustJoinChannel(t, h, a, "two") // a: general, one, two
	if err := h.JoinChannel(t.Context(), a, "three"); !errors.Is(err, server.ErrTooManyChannels) || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a's fourth channel = %v; want ErrTooManyChannels (RESOURCE_EXHAUSTED)", err)
	}
	// The server is at 3 channels, none empty: b cannot create one.
	if err := h.JoinChannel(t.Context(), b, "three"); !errors.Is(err, server.ErrTooManyChannels) {
		t.Errorf("creating a fourth channel with none empty = %v; want ErrTooManyChannels", err)
	}
	// Once "one" is empty, creating a channel drops it, history and all.
	if err := h.Send(t.Context(), a, "in one", "one", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.LeaveChannel(t.Context(), a, "one"); err != nil {
		t.Fatal(err)
	}
	mustJoinChannel(t, h, b, "three")
	var got []string
	for _, ch := range h.Channels() {
		got = append(got, ch.GetName())
	}
	if !slices.Equal(got, []string{"general", "three", "two"}) {
		t.Errorf("channels = %q; want one dropped for three", got)
	}
	// "two" empties; a new "one" takes its place, with no history.
	if err := h.LeaveChannel(t.Context(), a, "two"); err != nil {
		t.Fatal(err)
	}
	queued(a)
	mustJoinChannel(t, h, a, "one")
	if evs := queued(a); len(evs) != 1 || evs[0].GetChannelJoined().GetHistoryCount() != 0 {
		t.Errorf("a got %v on joining the new one; want no history", evs)
	}
}

// TestHubConcurrentChannels runs many sessions joining and leaving
// channels, sending to them and to each other at once, then checks every
// session's stream: numbered without gaps; no channel message outside a
// membership of the receiver; per channel, every message sent while the
// receiver was a member, in the one order, and history that meets the live
// messages with no gap; private messages only to and from the receiver.
func TestHubConcurrentChannels(t *testing.T) {
	t.Parallel()
	const users, rounds, history = 16, 30, 4
	channels := []string{"general", "a", "b", "c"}
	h := newHubWith(t, func(c *server.Config) {
		c.MaxSessions, c.QueueSize, c.HistorySize = users, 1<<16, history
	})
	sessions := make([]*server.Stream, users)
	for i := range users {
		sessions[i] = mustJoin(t, h, fmt.Sprintf("u%02d", i))
	}
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Go(func() {
			in := map[string]bool{"general": true}
			for r := range rounds {
				ch := channels[(i+r)%len(channels)]
				switch r % 4 {
				case 0:
					if in[ch] {
						_ = h.LeaveChannel(t.Context(), s, ch)
					} else {
						_ = h.JoinChannel(t.Context(), s, ch)
					}
					in[ch] = !in[ch]
				case 1, 2:
					err := h.Send(t.Context(), s, fmt.Sprintf("%s-%d", s.User().GetUsername(), r), ch, "", "")
					if in[ch] != (err == nil) {
						t.Errorf("send to %s (member %v) = %v", ch, in[ch], err)
					}
				case 3:
					to := fmt.Sprintf("u%02d", (i+r)%users)
					if err := h.Send(t.Context(), s, "dm", "", to, ""); err != nil {
						t.Errorf("dm to %s = %v", to, err)
					}
				}
			}
		})
	}
	wg.Wait()

	// Message ids end in the hub's message counter: the one order of all
	// messages.
	order := func(m *chatv1.Message) int {
		n, err := strconv.Atoi(m.GetId()[strings.LastIndexByte(m.GetId(), '-')+1:])
		if err != nil {
			t.Fatalf("message id %q does not end in a number", m.GetId())
		}
		return n
	}
	streams := make([][]*chatv1.ChatResponse, users)
	all := map[string][]int{} // channel -> every message's order, from the senders' echoes
	for i, s := range sessions {
		streams[i] = queued(s)
		for _, ev := range streams[i] {
			if m := ev.GetMessage(); m != nil && !ev.GetHistory() && m.GetSender() == s.User().GetUsername() && m.GetChannel() != "" {
				all[m.GetChannel()] = append(all[m.GetChannel()], order(m))
			}
		}
	}
	for ch := range all {
		slices.Sort(all[ch])
	}
	next := func(ch string, n int) int { // the message after n in ch, or -1
		i, _ := slices.BinarySearch(all[ch], n+1)
		if i < len(all[ch]) {
			return all[ch][i]
		}
		return -1
	}
	for i, s := range sessions {
		me := s.User().GetUsername()
		in := map[string]bool{}
		last := map[string]int{} // channel -> order of the last message seen in it while a member
		var seq uint64
		histLeft := 0
		for _, ev := range streams[i] {
			if ev.GetSeq() == 0 {
				continue
			}
			if seq++; ev.GetSeq() != seq {
				t.Fatalf("%s: seq %d after %d", me, ev.GetSeq(), seq-1)
			}
			switch e := ev.GetEvent().(type) {
			case *chatv1.ChatResponse_ChannelJoined:
				if e.ChannelJoined.GetUser().GetUsername() == me {
					ch := e.ChannelJoined.GetChannel()
					in[ch], last[ch], histLeft = true, -1, int(e.ChannelJoined.GetHistoryCount())
				}
			case *chatv1.ChatResponse_ChannelLeft:
				if e.ChannelLeft.GetUser().GetUsername() == me {
					delete(in, e.ChannelLeft.GetChannel())
				}
			case *chatv1.ChatResponse_Message:
				m := e.Message
				if m.GetChannel() == "" {
					if m.GetSender() != me && m.GetRecipient() != me {
						t.Errorf("%s got a private message from %s to %s", me, m.GetSender(), m.GetRecipient())
					}
					continue
				}
				ch, n := m.GetChannel(), order(m)
				if !in[ch] {
					t.Errorf("%s got %q in %s while not a member", me, m.GetText(), ch)
					continue
				}
				if ev.GetHistory() != (histLeft > 0) {
					t.Errorf("%s: %q history=%v; want history only right after joining", me, m.GetText(), ev.GetHistory())
				}
				if histLeft > 0 {
					histLeft--
				}
				if prev := last[ch]; prev >= 0 && next(ch, prev) != n {
					t.Errorf("%s: in %s, message %d after %d; want %d (no gap, one order)", me, ch, n, prev, next(ch, prev))
				}
				last[ch] = n
			}
		}
		for ch := range in {
			if n := last[ch]; n >= 0 && next(ch, n) != -1 {
				t.Errorf("%s is still in %s but its last message there is %d; want the last one sent, %d", me, ch, n, all[ch][len(all[ch])-1])
			}
		}
	}
}

// Catch-ups are forgiven one at a time: a client that stopped reading and
// keeps joining and leaving channels is dropped as too slow instead of
// piling up history without limit.
func TestHubCatchUpsPileUpToATooSlowDrop(t *testing.T) {
	t.Parallel()
	const queueSize, history = 8, 5
	h := newHubWith(t, func(c *server.Config) { c.QueueSize, c.HistorySize = queueSize, history })
	a := hubJoin(t, h, "a")
	mustJoinChannel(t, h, a, "go")
	for i := range history {
		if err := h.Send(t.Context(), a, fmt.Sprint(i), "go", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	queued(a)
	b := hubJoin(t, h, "b") // then stops reading
	for i := range 100 {
		if err := h.JoinChannel(t.Context(), b, "go"); err != nil {
			if !errors.Is(err, server.ErrNotJoined) {
				t.Fatalf("join %d: %v", i, err)
			}
			break
		}
		if err := h.LeaveChannel(t.Context(), b, "go"); err != nil {
			if !errors.Is(err, server.ErrNotJoined) {
				t.Fatalf("leave %d: %v", i, err)
			}
			break
		}
	}
	if !isEnded(b) || !errors.Is(b.EndErr(), server.ErrTooSlow) {
		t.Fatalf("b ended %v (%v) after joining and leaving while not reading; want dropped as too slow", isEnded(b), b.EndErr())
	}
	if n := len(queued(b)); n > queueSize+1+history+1 {
		t.Errorf("b had %d deliveries queued; want at most the queue size plus one catch-up (%d)", n, queueSize+1+history+1)
	}
}
