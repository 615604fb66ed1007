// Package batched lets a Go client of chat.v1 take its events one at a
// time from a server that sends several in one response (see
// Join.accept_batches): wrap a Chat stream, and the joins sent on it ask
// for batches while Recv takes them apart, so the code reading the stream
// is the same as without them.
package batched

import (
	"errors"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/proto"
)

// Stream is a Chat stream whose joins ask for batches and whose Recv
// returns one event at a time.
type Stream struct {
	chatv1.ChatService_ChatClient
	queue []*chatv1.ChatResponse
}

// Wrap returns stream as a Stream.
func Wrap(stream chatv1.ChatService_ChatClient) *Stream {
	return &Stream{ChatService_ChatClient: stream}
}

// ErrNested is Recv's error for a batch inside a batch, which no server
// sends.
var ErrNested = errors.New("batched: the server sent a batch inside a batch")

// Send sends req, a join asking for batches.
func (s *Stream) Send(req *chatv1.ChatRequest) error {
	if j := req.GetJoin(); j != nil && !j.GetAcceptBatches() {
		// A copy: the caller's request is the caller's.
		req = proto.CloneOf(req)
		req.GetJoin().AcceptBatches = true
	}
	return s.ChatService_ChatClient.Send(req)
}

// Recv returns the next event: the next of the batch it is in, or the
// next response.
func (s *Stream) Recv() (*chatv1.ChatResponse, error) {
	for len(s.queue) == 0 {
		resp, err := s.ChatService_ChatClient.Recv()
		if err != nil {
			return nil, err
		}
		b := resp.GetBatch()
		if b == nil {
			return resp, nil
		}
		s.queue = b.GetEvents()
	}
	ev := s.queue[0]
	s.queue[0] = nil // the caller's now, not the batch's
	s.queue = s.queue[1:]
	if ev.GetBatch() != nil {
		return nil, ErrNested
	}
	return ev, nil
}
