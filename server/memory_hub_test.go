package server_test

// What replays and channel histories really keep, measured on the
// heap: their byte budgets must count everything the events keep alive,
// or a client sending long messages makes every session and channel keep
// a multiple of what docs/limits.md promises.

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
)

// longText returns a message of n bytes, different for every i, so that
// no two messages share their text.
func longText(i, n int) string {
	prefix := fmt.Sprintf("%08d ", i)
	return prefix + strings.Repeat(string(rune('a'+i%26)), n-len(prefix))
}

func TestReplaysKeepTheirBudget(t *testing.T) {
	const recipients, perRecipient, textBytes = 40, 100, 4000
	h := newHubWith(t, func(c *server.Config) { c.MessageRate = 0 })
	cfg := server.DefaultConfig()
	before := settledHeap()

	sender := hubJoin(t, h, "sender")
	rs := make([]*server.Stream, recipients)
	for i := range rs {
		rs[i] = hubJoin(t, h, fmt.Sprintf("r%02d", i))
	}
	for i, r := range rs {
		for j := range perRecipient {
			if err := h.Send(t.Context(), sender, longText(i*perRecipient+j, textBytes), "", r.User().GetUsername(), ""); err != nil {
				t.Fatal(err)
			}
		}
		// Sent, as a writer would: the queues keep nothing.
		sender.Take(nil)
		for _, r := range rs {
			r.Take(nil)
		}
	}
	// Each recipient's replay holds its last ~256 KiB of private messages,
	// the sender's its last ~256 KiB of them all (shared with the
	// recipients'), and nothing else holds them.
	grew := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(h) // and all it holds, until measured
	sessions := int64(recipients + 1)
	perSession := grew / sessions
	budget := int64(cfg.ResumeBufferBytes)
	t.Logf("heap per session: %d KiB for a budget of %d KiB (sent %d KiB to each)", perSession>>10, budget>>10, perRecipient*textBytes>>10)
	if perSession > budget+budget/8 {
		t.Errorf("each session keeps %d KiB; want at most its resume budget of %d KiB (and a little for the session itself)", perSession>>10, budget>>10)
	}
	if perSession < budget/2 {
		t.Errorf("each session keeps only %d KiB of a budget of %d KiB: the test no longer fills the replays", perSession>>10, budget>>10)
	}
}

func TestHistoryKeepsItsBudget(t *testing.T) {
	const channels, sent, textBytes = 20, 100, 4000
	h := newHubWith(t, func(c *server.Config) { c.MessageRate = 0 })
	cfg := server.DefaultConfig()
	before := settledHeap()

	s := hubJoin(t, h, "writer")
	for i := range channels {
		ch := fmt.Sprint("c", i)
		if err := h.JoinChannel(t.Context(), s, ch); err != nil {
			t.Fatal(err)
		}
		for j := range sent {
			if err := h.Send(t.Context(), s, longText(i*sent+j, textBytes), ch, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		s.Take(nil)
	}
	grew := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(h)
	// The writer's own replay holds its last 256 KiB of them too.
	perChannel := (grew - int64(cfg.ResumeBufferBytes)) / channels
	budget := int64(cfg.HistoryBytes)
	t.Logf("heap per channel: %d KiB for a budget of %d KiB (sent %d KiB to each)", perChannel>>10, budget>>10, sent*textBytes>>10)
	if perChannel > budget+budget/8 {
		t.Errorf("each channel keeps %d KiB; want at most its history budget of %d KiB (and a little for the channel itself)", perChannel>>10, budget>>10)
	}
	if perChannel < budget/2 {
		t.Errorf("each channel keeps only %d KiB of a budget of %d KiB: the test no longer fills the histories", perChannel>>10, budget>>10)
	}
}

// A history's events are shown to whoever joins the channel later as
// copies marked as history; those copies are kept as long as the history
// keeps the message, and the history's budget must count them too. The
// messages here are as long as makes the byte budget, not the count,
// bind with the most events (about 90 a channel), where what each event
// costs besides its text matters most; and only the histories are left
// to measure: the sessions that filled and read them have logged out.
func TestHistoryShownToJoinersKeepsItsBudget(t *testing.T) {
	const channels, textBytes = 50, 1250
	h := newHubWith(t, func(c *server.Config) { c.MessageRate = 0 })
	cfg := server.DefaultConfig()
	before := settledHeap()

	s := hubJoin(t, h, "writer")
	for i := range channels {
		ch := fmt.Sprint("c", i)
		if err := h.JoinChannel(t.Context(), s, ch); err != nil {
			t.Fatal(err)
		}
		for j := range cfg.HistorySize {
			if err := h.Send(t.Context(), s, longText(i*cfg.HistorySize+j, textBytes), ch, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		s.Take(nil)
	}
	h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	s.Take(nil)
	r := hubJoin(t, h, "reader")
	shown := 0
	for i := range channels {
		if err := h.JoinChannel(t.Context(), r, fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
		shown += len(r.Take(nil)) - 1 // the channel_joined, then the history
	}
	h.Leave(r, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	r.Take(nil)
	s, r = nil, nil

	// The chat's index of recent messages, for replies, is the chat's,
	// bounded on its own (see docs/limits.md): not the histories'.
	recent := h.RecentBytes()
	grew := int64(heapInUse()) - int64(before) - recent
	runtime.KeepAlive(h)
	perChannel := grew / channels
	t.Logf("the index of recent messages takes about %d bytes", recent)
	budget := int64(cfg.HistoryBytes)
	t.Logf("heap per channel: %d bytes for a budget of %d (%d messages shown to the reader in each)", perChannel, budget, shown/channels)
	if shown/channels < cfg.HistorySize*3/4 {
		t.Fatalf("the reader was shown %d messages a channel; want the byte budget, not the count, to bind", shown/channels)
	}
	// A channel's own state (its ring of events, name, members) is under
	// 2 KiB.
	if perChannel > budget+budget/64 {
		t.Errorf("each channel keeps %d bytes once shown to a joiner; want at most its history budget of %d (and 2 KiB for the channel itself)", perChannel, budget)
	}
}
