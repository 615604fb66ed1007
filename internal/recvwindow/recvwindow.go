// Package recvwindow gives a gRPC stream served over HTTP/1.1 (grpc-web:
// a websocket, or a plain POST) the bound that HTTP/2's flow control gives
// a native one: what a client has sent and the server has not received yet
// is at most a window, whatever the server's handler is doing.
//
// grpc-go serves such a stream through its ServeHTTP transport, which reads
// the request body in a goroutine of its own, as fast as the body gives,
// into a buffer without limit, and takes a 16 KiB buffer for every read
// that returns bytes. A native stream is not read past its 64 KiB window
// while its handler does not receive; this one was read for ever: a browser
// socket that stopped reading (so that chatd stopped receiving from it: see
// server's readLoop) and kept sending grew chatd by gigabytes in seconds,
// 16 KiB at a time even for messages of a few bytes.
//
// [Body] sits between that goroutine and the real body. It hands gRPC one
// whole message at a time (so that no read returns a few bytes to be kept
// in a 16 KiB buffer), counts the buffers gRPC keeps for what it handed
// over, and reads nothing more from the client while they reach the window.
// The stream interceptor ([StreamServerInterceptor]) tells it each time the
// handler has received a message, which frees that message's buffers. Not
// reading is what bounds the client: its websocket, or its POST's body,
// stays in the kernel's socket buffers and then in the client's own memory,
// as a native client's data waits for a window update.
package recvwindow

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"
)

// Window is how many bytes of gRPC's buffers the messages handed over and
// not yet received may take, as HTTP/2's receive window on chatd's native
// streams. A new message is handed over only while they take less; a
// message is always handed over whole, so one message more may be held.
const Window = 64 << 10

// headerLen is the size of gRPC's message prefix: a flags byte and a
// 4-byte big-endian length.
const headerLen = 5

// Body is a grpc-web request body as gRPC's ServeHTTP transport reads it,
// bounded by [Window]. Read is for one goroutine (gRPC's); Received and
// Close may be called from any.
type Body struct {
	src    io.ReadCloser
	maxMsg int // the largest message gRPC takes; a longer one is not read

	// Read's own state, touched only by the reading goroutine.
	hdr    [headerLen]byte
	hdrOut int   // bytes of hdr handed over; headerLen once all were
	left   int64 // bytes of the current message (header included) still to hand over
	cost   int   // what the current message's reads have taken of gRPC's buffers so far
	err    error // the error every later Read returns

	mu      sync.Mutex
	pending int   // gRPC's buffers taken by messages not yet received, in bytes
	costs   []int // each such message's part of pending, oldest first
	closed  bool
	wake    chan struct{} // a token when pending falls or the body is closed
}

// NewBody returns src, a request body of gRPC messages, bounded by
// [Window]. maxMsg is the gRPC server's largest message (its
// MaxRecvMsgSize): the body hands over the prefix of a longer one, on
// which gRPC fails the stream, and reads no further.
func NewBody(src io.ReadCloser, maxMsg int) *Body {
	return &Body{src: src, maxMsg: maxMsg, hdrOut: headerLen, wake: make(chan struct{}, 1)}
}

// Read hands over the next bytes of the current message, reading from the
// client until p is full or the message is complete (never returning a
// part of one message and a part of the next). Between two messages it
// waits while the messages handed over and not yet received take the
// window.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.left == 0 {
		if err := b.awaitWindow(); err != nil {
			b.err = err
			return 0, err
		}
		if err := b.readHeader(); err != nil {
			b.err = err
			return 0, err
		}
	}
	n := 0
	if b.hdrOut < headerLen {
		k := copy(p, b.hdr[b.hdrOut:])
		b.hdrOut += k
		b.left -= int64(k)
		n = k
	}
	var err error
	for n < len(p) && b.left > 0 && b.hdrOut == headerLen {
		k := int(min(int64(len(p)-n), b.left))
		var m int
		m, err = b.src.Read(p[n : n+k])
		n += m
		b.left -= int64(m)
		if err != nil {
			break
		}
	}
	// gRPC keeps whatever this read returns in a buffer of len(p) bytes
	// until the message has been received.
	b.charge(len(p))
	if err != nil {
		b.err = err
		if err == io.EOF && b.left > 0 {
			b.err = io.ErrUnexpectedEOF
		}
		return n, b.err
	}
	return n, nil
}

// readHeader reads the next message's prefix. io.EOF before its first
// byte is the end of the body.
func (b *Body) readHeader() error {
	got := 0
	for got < headerLen {
		m, err := b.src.Read(b.hdr[got:])
		got += m
		if err == io.EOF && got == 0 {
			return io.EOF
		}
		if err == io.EOF && got < headerLen {
			return io.ErrUnexpectedEOF
		}
		if err != nil && got < headerLen {
			return err
		}
	}
	length := binary.BigEndian.Uint32(b.hdr[1:])
	b.hdrOut = 0
	if int64(length) > int64(b.maxMsg) {
		// gRPC refuses the message when it reads this prefix and the
		// stream ends: nothing of the message is read, and the Read
		// after the prefix fails.
		b.left = headerLen
		b.err = fmt.Errorf("recvwindow: a message of %d bytes, more than the %d allowed", length, b.maxMsg)
		return nil
	}
	b.left = headerLen + int64(length)
	return nil
}

// charge counts n more bytes of gRPC's buffers against the current
// message and, once it has been handed over whole, queues its cost to be
// freed when it is received.
func (b *Body) charge(n int) {
	b.cost += n
	b.mu.Lock()
	b.pending += n
	if b.left == 0 {
		b.costs = append(b.costs, b.cost)
		b.cost = 0
	}
	b.mu.Unlock()
}

// awaitWindow waits until the messages handed over take less than the
// window, or the body is closed.
func (b *Body) awaitWindow() error {
	for {
		b.mu.Lock()
		closed, full := b.closed, b.pending >= Window
		b.mu.Unlock()
		switch {
		case closed:
			return io.EOF
		case !full:
			return nil
		}
		<-b.wake
	}
}

// Received records that the stream's handler has received the oldest
// message handed over, whose buffers gRPC has given back.
func (b *Body) Received() {
	b.mu.Lock()
	if len(b.costs) > 0 {
		b.pending -= b.costs[0]
		b.costs = b.costs[1:]
	}
	b.mu.Unlock()
	b.signal()
}

// Pending returns how many bytes of gRPC's buffers the messages handed
// over and not yet received take, for tests and metrics.
func (b *Body) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

// Close closes the body: a Read waiting for the window returns io.EOF, as
// every later one does. gRPC closes the body when the stream is over, and
// then waits for its reading goroutine.
func (b *Body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	return b.src.Close()
}

func (b *Body) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// bodyKey is the context key of a request's *Body.
type bodyKey struct{}

// NewContext returns ctx carrying b, for the HTTP request whose body b is:
// gRPC derives the stream's context from the request's, which is how
// [StreamServerInterceptor] finds b.
func NewContext(ctx context.Context, b *Body) context.Context {
	return context.WithValue(ctx, bodyKey{}, b)
}

// StreamServerInterceptor tells the [Body] of a stream served over HTTP/1.1
// (see [NewContext]) of every message its handler receives. A gRPC server
// whose streams are read through a Body must have it, or their bodies stop
// at the window; streams without a Body are passed through untouched.
// (A unary call receives its one message without it: the first message is
// always handed over.)
func StreamServerInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if b, ok := ss.Context().Value(bodyKey{}).(*Body); ok {
		ss = &stream{ServerStream: ss, body: b}
	}
	return handler(srv, ss)
}

// stream is a server stream whose receptions free its Body's window.
type stream struct {
	grpc.ServerStream
	body *Body
}

func (s *stream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.body.Received()
	}
	return err
}
