package batched_test

import (
	"errors"
	"io"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/batched"
	"google.golang.org/protobuf/proto"
)

// fakeStream is the client side of a Chat stream that records what is
// sent and returns responses from a list, then io.EOF.
type fakeStream struct {
	chatv1.ChatService_ChatClient // nil: only Send and Recv are used
	sent                          []*chatv1.ChatRequest
	responses                     []*chatv1.ChatResponse
}

func (f *fakeStream) Send(req *chatv1.ChatRequest) error {
	f.sent = append(f.sent, req)
	return nil
}

func (f *fakeStream) Recv() (*chatv1.ChatResponse, error) {
	if len(f.responses) == 0 {
		return nil, io.EOF
	}
	r := f.responses[0]
	f.responses = f.responses[1:]
	return r, nil
}

func event(seq uint64) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Seq: seq, Event: &chatv1.ChatResponse_UserLeft{UserLeft: &chatv1.UserLeft{}}}
}

func batch(evs ...*chatv1.ChatResponse) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Batch{Batch: &chatv1.Batch{Events: evs}}}
}

func TestJoinAsksForBatchesWithoutChangingTheCallersRequest(t *testing.T) {
	f := &fakeStream{}
	s := batched.Wrap(f)
	join := &chatv1.ChatRequest{ClientId: "j", Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "alice", LastSeq: 7}}}
	send := &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "hi"}}}
	for _, req := range []*chatv1.ChatRequest{join, send} {
		if err := s.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	if join.GetJoin().GetAcceptBatches() {
		t.Fatal("Send changed the caller's join")
	}
	want := proto.CloneOf(join)
	want.GetJoin().AcceptBatches = true
	if len(f.sent) != 2 || !proto.Equal(f.sent[0], want) || f.sent[1] != send {
		t.Fatalf("sent %v; want %v, then the send as it was", f.sent, want)
	}
}

func TestRecvTakesBatchesApartInOrder(t *testing.T) {
	f := &fakeStream{responses: []*chatv1.ChatResponse{
		batch(event(1), event(2)),
		event(3),
		batch(), // empty: nothing to return, read on
		batch(event(4), event(5), event(6)),
	}}
	s := batched.Wrap(f)
	for want := uint64(1); want <= 6; want++ {
		ev, err := s.Recv()
		if err != nil || ev.GetSeq() != want || ev.GetBatch() != nil {
			t.Fatalf("Recv = %v, %v; want the event of seq %d", ev, err, want)
		}
	}
	if ev, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv at the end = %v, %v; want io.EOF", ev, err)
	}
}

func TestRecvRefusesANestedBatch(t *testing.T) {
	s := batched.Wrap(&fakeStream{responses: []*chatv1.ChatResponse{batch(event(1), batch(event(2)))}})
	if ev, err := s.Recv(); err != nil || ev.GetSeq() != 1 {
		t.Fatalf("Recv = %v, %v; want the event of seq 1", ev, err)
	}
	if ev, err := s.Recv(); !errors.Is(err, batched.ErrNested) {
		t.Fatalf("Recv = %v, %v; want ErrNested", ev, err)
	}
}
