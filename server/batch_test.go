package server_test

import (
	"fmt"
	"strings"
	"testing"

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

	// join reads the welcome and general's snapshot as separate
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
