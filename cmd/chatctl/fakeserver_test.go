package main

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeChat is a ChatService whose Chat streams a test plays by hand: it
// reads what chatctl sends, sends what it likes and ends each stream with
// the status it chooses, to play what chatd cannot be made to do on cue
// (lose an answer, end a stream as a broken proxy would).
type fakeChat struct {
	chatv1.UnimplementedChatServiceServer
	addr    string
	streams chan *fakeStream

	mu sync.Mutex
	// listErr, if set, is how ListUsers and ListChannels fail; else
	// they answer an empty list. Guarded by mu.
	listErr error
}

// failLists makes ListUsers and ListChannels fail with err.
func (f *fakeChat) failLists(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

// list answers a listing call: resp, or the error failLists set.
func list[R any](f *fakeChat, resp R) (R, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		var zero R
		return zero, f.listErr
	}
	return resp, nil
}

// fakeStream is one Chat stream of a fakeChat, as the server sees it.
type fakeStream struct {
	server string // the address of the fakeChat it is to
	stream grpc.BidiStreamingServer[chatv1.ChatRequest, chatv1.ChatResponse]
	reqs   chan *chatv1.ChatRequest // what chatctl sent, until the stream ends
	end    chan error               // ends the stream with this status (nil: OK)
}

// startFake serves a fakeChat on a free loopback port until the test ends.
func startFake(t *testing.T) *fakeChat {
	t.Helper()
	return startFakes(t, 1)[0]
}

// startFakes serves n fakeChats, the nodes of a cluster to chatctl, whose
// streams all come in one queue: next waits for chatctl's next stream to
// any of them, and fakeStream.server says which.
func startFakes(t *testing.T, n int) []*fakeChat {
	t.Helper()
	streams := make(chan *fakeStream, 4)
	fakes := make([]*fakeChat, n)
	for i := range fakes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fakes[i] = &fakeChat{addr: lis.Addr().String(), streams: streams}
		srv := grpc.NewServer()
		chatv1.RegisterChatServiceServer(srv, fakes[i])
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
	}
	return fakes
}

func (f *fakeChat) ListUsers(context.Context, *chatv1.ListUsersRequest) (*chatv1.ListUsersResponse, error) {
	return list(f, &chatv1.ListUsersResponse{})
}

func (f *fakeChat) ListChannels(context.Context, *chatv1.ListChannelsRequest) (*chatv1.ListChannelsResponse, error) {
	return list(f, &chatv1.ListChannelsResponse{})
}

func (f *fakeChat) Chat(stream grpc.BidiStreamingServer[chatv1.ChatRequest, chatv1.ChatResponse]) error {
	fs := &fakeStream{server: f.addr, stream: stream, reqs: make(chan *chatv1.ChatRequest, 16), end: make(chan error, 1)}
	go func() {
		defer close(fs.reqs)
		for {
			req, err := stream.Recv()
			if err == io.EOF {
				select {
				case fs.end <- nil: // a logout, as chatd takes it
				default:
				}
			}
			if err != nil {
				return
			}
			select {
			case fs.reqs <- req:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	select {
	case f.streams <- fs:
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
	select {
	case err := <-fs.end:
		return err
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

// next waits for chatctl's next Chat stream.
func (f *fakeChat) next(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case fs := <-f.streams:
		return fs
	case <-time.After(liveTimeout):
		t.Fatalf("no Chat stream within %s", liveTimeout)
		return nil
	}
}

// recv waits for chatctl's next request on the stream.
func (fs *fakeStream) recv(t *testing.T) *chatv1.ChatRequest {
	t.Helper()
	select {
	case req, ok := <-fs.reqs:
		if !ok {
			t.Fatal("the stream ended before the request the test waits for")
		}
		return req
	case <-time.After(liveTimeout):
		t.Fatalf("no request within %s", liveTimeout)
		return nil
	}
}

// send sends ev on the stream, with seq and the time set.
func (fs *fakeStream) send(t *testing.T, seq uint64, ev *chatv1.ChatResponse) {
	t.Helper()
	ev.Seq, ev.Time = seq, timestamppb.Now()
	if err := fs.stream.Send(ev); err != nil {
		t.Fatalf("send %v: %v", ev, err)
	}
}

// welcome answers the join of a new session of alice, in general.
func (fs *fakeStream) welcome(t *testing.T) {
	t.Helper()
	if j := fs.recv(t).GetJoin(); j.GetUsername() != "alice" || j.GetResumeToken() != "" {
		t.Fatalf("first request %v, want a join of alice", j)
	}
	fs.send(t, 1, welcomeEv("alice", "alice"))
	fs.send(t, 2, channelJoinedEv("general", "alice", 0, "alice"))
}

// resume answers a resume of that session, as a complete recovery of the
// events up to seq.
func (fs *fakeStream) resume(t *testing.T, seq uint64) {
	t.Helper()
	if j := fs.recv(t).GetJoin(); j.GetResumeToken() != "tok" || j.GetLastSeq() != seq {
		t.Fatalf("request %v, want a join with the resume token tok and last_seq %d", j, seq)
	}
	w := welcomeEv("alice")
	w.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_COMPLETE
	fs.send(t, seq, w)
}
