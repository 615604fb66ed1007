package server_test

// Tests of channel history on a hub driven directly, with no transport:
// what a session gets on entering a channel, before the channel's live
// messages (channel_history_test.go has the same over real TCP).

import (
	"fmt"
	"testing"

	"github.com/chatd/chatd/server"
)

func TestHubHistory(t *testing.T) {
	t.Parallel()
	const size = 5
	h := newHubWith(t, func(c *server.Config) { c.HistorySize = size })
	a := hubJoin(t, h, "a")
	mustJoinChannel(t, h, a, "go")
	for i := range size + 3 {
		if err := h.Send(t.Context(), a, fmt.Sprint("m", i), "go", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Send(t.Context(), a, "in general", "", "", ""); err != nil {
		t.Fatal(err)
	}
	sent := queued(a)

	b := hubJoin(t, h, "b") // general's history: one message
	mustJoinChannel(t, h, b, "go")
	evs := queued(b)
	cj := evs[0].GetChannelJoined()
	if cj.GetHistoryCount() != size || len(evs) != 1+size {
		t.Fatalf("b got %v; want channel_joined with history_count %d and that many messages", evs, size)
	}
	for i, ev := range evs[1:] {
		want := sent[len(sent)-1-size+i] // the last size messages sent to go
		if !ev.GetHistory() || ev.GetMessage().GetId() != want.GetMessage().GetId() || !ev.GetTime().AsTime().Equal(want.GetTime().AsTime()) ||
			ev.GetSeq() != evs[0].GetSeq()+uint64(i)+1 {
			t.Errorf("b's history %d = %v; want %v marked history, at its first time, numbered in b's order", i, ev, want)
		}
	}
	// History, then live: no gap, no duplicate.
	if err := h.Send(t.Context(), a, "live", "go", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, b); ev.GetHistory() || ev.GetMessage().GetText() != "live" {
		t.Errorf("b's next event = %v; want the live message, not history", ev)
	}

	// With history off, joiners get none.
	h0 := newHubWith(t, func(c *server.Config) { c.HistorySize = 0 })
	x := hubJoin(t, h0, "x")
	if err := h0.Send(t.Context(), x, "gone", "", "", ""); err != nil {
		t.Fatal(err)
	}
	y := mustJoin(t, h0, "y")
	if evs := queued(y); len(evs) != 2 || evs[1].GetChannelJoined().GetHistoryCount() != 0 {
		t.Errorf("y got %v; want no history with HistorySize 0", evs)
	}
}

// A channel's history, in a catch-up, is made of kept events: however
// long, it does not make the joiner look too slow, and neither does the
// next live event.
func TestHubHistoryLongerThanTheQueueIsNotSlowness(t *testing.T) {
	t.Parallel()
	const queueSize = 4
	h := newHubWith(t, func(c *server.Config) { c.QueueSize, c.HistorySize = queueSize, 3*queueSize })
	a := hubJoin(t, h, "a")
	mustJoinChannel(t, h, a, "go")
	for i := range 3 * queueSize {
		if err := h.Send(t.Context(), a, fmt.Sprint(i), "go", "", ""); err != nil {
			t.Fatal(err)
		}
		queued(a)
	}
	b := hubJoin(t, h, "b")
	mustJoinChannel(t, h, b, "go")
	mustJoinChannel(t, h, b, "more") // more catch-up, still not counted
	if err := h.Send(t.Context(), a, "live", "go", "", ""); err != nil {
		t.Fatal(err)
	}
	if isEnded(b) {
		t.Fatalf("b was dropped (%v) for a history of %d with a queue of %d", b.EndErr(), 3*queueSize, queueSize)
	}
	evs := queued(b)
	if n := len(evs); n != 1+3*queueSize+1+1 || evs[n-1].GetMessage().GetText() != "live" {
		t.Errorf("b got %d events, last %v; want go's catch-up and history, more's catch-up, then the live message", n, evs[n-1])
	}
	// Once taken, the limit applies again as usual.
	for i := range queueSize + 1 {
		if err := h.Send(t.Context(), a, fmt.Sprint("flood ", i), "go", "", ""); err != nil {
			t.Fatal(err)
		}
		queued(a)
	}
	if !isEnded(b) {
		t.Error("b kept up with no reading past its queue size; want it dropped as too slow")
	}
}
