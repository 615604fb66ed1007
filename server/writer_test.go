package server_test

// Tests of a session's writer (writer.go) over real TCP: batches, sent
// only to a client that asks for them (Join.accept_batches), and the write
// delay that gathers a burst.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// batchJoinReq is a join that asks for batches.
func batchJoinReq(name string) *chatv1.ChatRequest {
	req := joinReq(name)
	req.GetJoin().AcceptBatches = true
	return req
}

// TestBatchesOnlyWhenAsked has a session that asks for batches get its
// welcome and general's channel_joined, queued together by its join, as
// one batch of the two, numbered as alone; a session that does not ask
// gets them one by one, as before batches existed.
func TestBatchesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))

	bob := openStream(t, dial(t, ts.addr))
	bob.name = "bob"
	bob.send(t, batchJoinReq("bob"))
	first := bob.next(t)
	evs := first.GetBatch().GetEvents()
	if first.GetSeq() != 0 || first.GetTime() != nil || len(evs) != 2 {
		t.Fatalf("bob's first response = %v; want a batch with no seq or time of its own, of two events", first)
	}
	if evs[0].GetWelcome().GetYou().GetUsername() != "bob" || evs[0].GetSeq() != 1 {
		t.Fatalf("bob's batch begins with %v; want his welcome, seq 1", evs[0])
	}
	if cj := evs[1].GetChannelJoined(); cj.GetChannel() != "general" || cj.GetUser().GetUsername() != "bob" || evs[1].GetSeq() != 2 {
		t.Fatalf("bob's batch goes on with %v; want his channel_joined of general, seq 2", evs[1])
	}

	// join reads the welcome and general's catch-up as separate
	// responses, and fails on anything else.
	alice := join(t, ts, "alice")
	expectJoined(t, "bob", bob.next(t), "alice", false)
	alice.say(t, "hi", "a1")
	expectMessage(t, "alice", alice.next(t), "alice", "hi", "a1")
	expectMessage(t, "bob", bob.next(t), "alice", "hi", "a1")
}

// TestBatchesKeepOrderAndBound lets events pile up for a session that
// asks for batches (its client stops reading until gRPC's flow control
// stops the server's writer), then reads them: every event comes once, in
// order, gap-free, in batches that stay within their bound, and the
// events are exactly those a session without batches gets one by one.
func TestBatchesKeepOrderAndBound(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))
	// Fixed 64 KiB windows: gRPC's bandwidth estimate would let the
	// client's side take in far more before the server has to wait.
	small := []grpc.DialOption{grpc.WithInitialWindowSize(1 << 16), grpc.WithInitialConnWindowSize(1 << 16)}

	bob := openStream(t, dial(t, ts.addr, small...))
	bob.name = "bob"
	bob.send(t, batchJoinReq("bob"))
	bob.next(t) // welcome and general's channel_joined (see TestBatchesOnlyWhenAsked)
	carol := join(t, ts, "carol")
	alice := join(t, ts, "alice")
	expectJoined(t, "carol", carol.next(t), "alice", false)

	const n = 300 // 300 KiB of messages: several times what fits in the windows
	text := strings.Repeat("x", 1000)
	for i := range n {
		alice.say(t, fmt.Sprintf("%03d %s", i, text), fmt.Sprintf("m%d", i))
	}
	for i := range n {
		expectMessage(t, "alice", alice.next(t), "alice", fmt.Sprintf("%03d %s", i, text), fmt.Sprintf("m%d", i))
	}

	// carol, without batches: one response per event.
	var want []*chatv1.ChatResponse
	for range n {
		ev := carol.next(t)
		if ev.GetBatch() != nil {
			t.Fatalf("carol, whose join did not ask for batches, got a batch: %v", ev)
		}
		want = append(want, ev)
	}

	// bob: carol's and alice's joins, then the same n messages, however
	// batched.
	var got []*chatv1.ChatResponse
	responses, biggest := 0, 0
	for len(got) < n+2 {
		resp := bob.next(t)
		responses++
		if size := proto.Size(resp); size > 64<<10+16 {
			t.Fatalf("bob got a response of %d bytes; batches stay within 64 KiB", size)
		}
		evs := []*chatv1.ChatResponse{resp}
		if b := resp.GetBatch(); b != nil {
			if resp.GetSeq() != 0 || resp.GetTime() != nil || len(b.GetEvents()) < 2 {
				t.Fatalf("bob got a batch %v; want one of two events or more, with no seq or time of its own", resp)
			}
			evs = b.GetEvents()
		}
		biggest = max(biggest, len(evs))
		got = append(got, evs...)
	}
	if len(got) != n+2 {
		t.Fatalf("bob got %d events; want %d", len(got), n+2)
	}
	expectJoined(t, "bob", got[0], "carol", false)
	expectJoined(t, "bob", got[1], "alice", false)
	for i, ev := range got {
		if ev.GetSeq() != uint64(3+i) {
			t.Fatalf("bob's event %d has seq %d; want %d (gap-free after his welcome, 1, and channel_joined, 2)", i, ev.GetSeq(), 3+i)
		}
	}
	for i, ev := range got[2:] {
		w := proto.CloneOf(want[i])
		w.Seq = ev.GetSeq()
		if !proto.Equal(ev, w) {
			t.Fatalf("bob's message %d = %v; want what carol got, %v", i, ev, w)
		}
	}
	if biggest < 2 {
		t.Fatalf("bob got %d events in %d responses, none batched; the test did not make events pile up", len(got), responses)
	}
	t.Logf("bob got %d events in %d responses, up to %d in one", len(got), responses, biggest)
}

// TestWriteDelayGathersABurst has a session's writer, which has just sent
// several events at once (the join's welcome and channel_joined), wait
// WriteDelay before sending more: messages sent meanwhile reach the
// client together, in one batch, no sooner than the delay.
func TestWriteDelayGathersABurst(t *testing.T) {
	t.Parallel()
	const delay = server.MaxWriteDelay // far longer than three messages take to apply
	ts := startServer(t, testConfig(func(c *server.Config) { c.WriteDelay, c.MessageRate = delay, 0 }))
	alice := join(t, ts, "alice")

	bob := openStream(t, dial(t, ts.addr))
	bob.name = "bob"
	bob.send(t, batchJoinReq("bob"))
	if n := len(bob.next(t).GetBatch().GetEvents()); n != 2 {
		t.Fatalf("bob's first response has %d events; want his welcome and channel_joined in one batch", n)
	}
	sent := time.Now() // bob's writer sent them before this, and waits from then
	for i := range 3 {
		alice.say(t, fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
	}
	resp := bob.next(t)
	if waited := time.Since(sent); waited < delay/2 {
		t.Errorf("bob got alice's messages %s after his join's burst; want them held for the write delay, %s", waited, delay)
	}
	evs := resp.GetBatch().GetEvents()
	if len(evs) != 3 {
		t.Fatalf("bob got %v; want alice's three messages in one batch", resp)
	}
	for i, ev := range evs {
		expectMessage(t, "bob", ev, "alice", fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
	}
}

// TestWriteDelayNeverDropsAReader sends a session that reads everything
// more messages than its queue holds while its writer holds back after its
// join (a second): the writer must send once the queue is half full, not
// wait out the delay while the messages drop a client that keeps up. The
// sender waits for each message's echo, a pace any writer that does not
// hold back keeps up with.
func TestWriteDelayNeverDropsAReader(t *testing.T) {
	t.Parallel()
	// Room for 32 messages after the writer is woken at half the queue,
	// which even a busy machine running this under the race detector
	// gives it time to take; far fewer than it holds back a second for.
	const queueSize = 64
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.WriteDelay, c.QueueSize, c.MessageRate = server.MaxWriteDelay, queueSize, 0
	}))
	alice := join(t, ts, "alice")
	// alice's own writer holds back after her join too: her first echo
	// comes once it is done, and from then on she gets one event at a
	// time, each at once.
	alice.say(t, "first", "first")
	expectMessage(t, "alice", alice.next(t), "alice", "first", "first")

	bob := openStream(t, dial(t, ts.addr))
	bob.name = "bob"
	bob.send(t, batchJoinReq("bob"))
	bob.next(t) // his welcome, channel_joined and general's history, after which his writer holds back
	expectJoined(t, "alice", alice.next(t), "bob", false)
	const n = 3 * queueSize
	for i := range n {
		alice.say(t, fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
		expectMessage(t, "alice", alice.next(t), "alice", fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
	}
	for i := 0; i < n; {
		resp := bob.next(t)
		evs := []*chatv1.ChatResponse{resp}
		if b := resp.GetBatch(); b != nil {
			evs = b.GetEvents()
		}
		for _, ev := range evs {
			expectMessage(t, "bob", ev, "alice", fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
			i++
		}
	}
}
