package main

import (
	"io"
	"net"
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
}

// fakeStream is one Chat stream of a fakeChat, as the server sees it.
type fakeStream struct {
	stream grpc.BidiStreamingServer[chatv1.ChatRequest, chatv1.ChatResponse]
	reqs   chan *chatv1.ChatRequest // what chatctl sent, until the stream ends
	end    chan error               // ends the stream with this status (nil: OK)
}

// startFake serves a fakeChat on a free loopback port until the test ends.
func startFake(t *testing.T) *fakeChat {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeChat{addr: lis.Addr().String(), streams: make(chan *fakeStream, 4)}
	srv := grpc.NewServer()
	chatv1.RegisterChatServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeChat) Chat(stream grpc.BidiStreamingServer[chatv1.ChatRequest, chatv1.ChatResponse]) error {
	fs := &fakeStream{stream: stream, reqs: make(chan *chatv1.ChatRequest, 16), end: make(chan error, 1)}
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
