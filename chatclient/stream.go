package chatclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/batched"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// ErrNoWelcome is [Open]'s error when the server ended the stream before
// welcoming the join, or answered it with something else: it went away
// mid-join, so trying again may well succeed.
var ErrNoWelcome = errors.New("the server ended the session before welcoming it")

// Stream is one joined Chat stream on a connection of its own. Recv
// returns one event at a time: the stream asks for batches (several events
// in one response, cheaper for chatd when many are waiting) and takes them
// apart, in order.
//
// As with any gRPC stream, Recv may be called from one goroutine while
// Send or CloseSend is called from another, but neither Recv nor Send from
// two goroutines at once. Close may be called from any goroutine, any
// number of times.
type Stream struct {
	stream    *batched.Stream
	conn      *grpc.ClientConn
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// Open dials addr as [Dial] does, opens a Chat stream and sends join, and
// waits for the welcome, which it returns with the stream. ctx bounds the
// dial and the wait for the welcome; once welcomed, the stream outlives
// ctx, until Close. Errors are Dial's, the stream's status (the join
// refused: codes.AlreadyExists for a name in use, say), or [ErrNoWelcome].
func Open(ctx context.Context, addr string, cfg Config, join *chatv1.Join) (*Stream, *chatv1.ChatResponse, error) {
	conn, err := Dial(ctx, addr, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The stream outlives ctx: a client interrupted by its user still has
	// to send its leave and wait for the server's goodbye. Until the
	// welcome, though, ctx ends it.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	s := &Stream{conn: conn, cancel: cancel}
	welcome, err := s.join(sctx, join)
	if !stop() && err == nil {
		err = status.FromContextError(ctx.Err()).Err() // ctx ended the stream just as it was welcomed
	}
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, welcome, nil
}

// join opens the stream on ctx, sends join and waits for the welcome.
func (s *Stream) join(ctx context.Context, join *chatv1.Join) (*chatv1.ChatResponse, error) {
	raw, err := chatv1.NewChatServiceClient(s.conn).Chat(ctx)
	if err != nil {
		return nil, err
	}
	s.stream = batched.Wrap(raw)
	// If Send fails, the stream is over and Recv says why.
	_ = s.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: join}})
	first, err := s.stream.Recv()
	if err == io.EOF {
		return nil, ErrNoWelcome
	}
	if err != nil {
		return nil, err
	}
	if first.GetWelcome() == nil {
		return nil, fmt.Errorf("%w: it answered the join with %T", ErrNoWelcome, first.GetEvent())
	}
	return first, nil
}

// Recv returns the next event, or why the stream ended: io.EOF when the
// server ended it OK (after a leave or CloseSend), else its status.
func (s *Stream) Recv() (*chatv1.ChatResponse, error) { return s.stream.Recv() }

// Send sends req. An error means the stream is over; Recv says why.
func (s *Stream) Send(req *chatv1.ChatRequest) error { return s.stream.Send(req) }

// CloseSend half-closes the stream: chatd takes it as a leave, sends what
// is queued for the session, and ends the stream, which Recv reports as
// io.EOF.
func (s *Stream) CloseSend() error { return s.stream.CloseSend() }

// Conn is the stream's connection, for unary calls to the same server
// (History, ListUsers): they see the session the stream joined. It is
// closed with the stream.
func (s *Stream) Conn() *grpc.ClientConn { return s.conn }

// Close ends the stream at once, without a leave (chatd keeps the session
// for its grace period, to be resumed), and closes its connection.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		_ = s.conn.Close()
	})
}
