package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backoff between reconnection attempts: the first comes almost at once
// (a blip is the common case), later ones wait twice as long each time up
// to maxBackoff, each with jitter, so that the clients of a restarted chatd
// do not all come back in the same instant.
const (
	firstBackoff = 100 * time.Millisecond
	baseBackoff  = 250 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// backoff is how long to wait before reconnection attempt n (0 is the
// first): up to firstBackoff, then between half and all of
// baseBackoff·2^(n-1), capped at maxBackoff.
func backoff(n int) time.Duration {
	if n == 0 {
		return rand.N(firstBackoff)
	}
	d := maxBackoff
	if n < 16 { // beyond that the shift overflows; the cap applies anyway
		d = min(baseBackoff<<(n-1), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// link is one connection to chatd and the joined Chat stream on it.
type link struct {
	conn   *grpc.ClientConn
	stream chatStream
	cancel context.CancelFunc // ends the stream
}

// close ends the stream and the connection.
func (l *link) close() {
	l.cancel()
	_ = l.conn.Close()
}

// connector makes links to chatd. It is not changed after it is made, so
// any goroutine may use it.
type connector struct {
	opts *options
}

// connect dials chatd within dialTimeout and sends join. ctx bounds the
// dial and the wait for the welcome; once welcomed, the stream outlives
// ctx, until the link is closed. Errors are the stream's status, dial's
// errors or errNoWelcome: see joinError.
func (c *connector) connect(ctx context.Context, dialTimeout time.Duration, join *chatv1.Join) (*link, *chatv1.ChatResponse, error) {
	o := *c.opts
	o.dialTimeout = dialTimeout
	conn, err := dial(ctx, &o)
	if err != nil {
		return nil, nil, err
	}
	// The stream outlives ctx: when Ctrl-C cancels ctx, the session still
	// has to send its leave and wait for the server's goodbye. Until the
	// welcome, though, ctx ends it.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	stream, welcome, err := joinChat(sctx, chatv1.NewChatServiceClient(conn), join)
	if !stop() && err == nil {
		err = status.FromContextError(ctx.Err()).Err() // ctx ended the stream just as it was welcomed
	}
	if err != nil {
		cancel()
		_ = conn.Close()
		return nil, nil, err
	}
	return &link{conn: conn, stream: stream, cancel: cancel}, welcome, nil
}

// reconnected is the outcome of reconnect.
type reconnected struct {
	link    *link
	welcome *chatv1.ChatResponse
	err     error // why reconnect gave up; link is nil then
}

// reconnect joins with join (which carries the resume token) until one
// attempt succeeds, one fails in a way retrying cannot fix, deadline
// passes, or ctx is cancelled, waiting with backoff between attempts.
func (c *connector) reconnect(ctx context.Context, deadline time.Time, join *chatv1.Join) reconnected {
	var last error
	for n := 0; ; n++ {
		wait := backoff(n)
		if time.Until(deadline) < wait {
			if last == nil {
				last = errors.New("no time left to try")
			}
			return reconnected{err: last}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return reconnected{err: ctx.Err()}
		case <-t.C:
		}
		actx, cancel := context.WithDeadline(ctx, deadline)
		l, w, err := c.connect(actx, min(c.opts.dialTimeout, time.Until(deadline)), join)
		cancel()
		if err == nil {
			return reconnected{link: l, welcome: w}
		}
		if ctx.Err() != nil {
			return reconnected{err: ctx.Err()}
		}
		last = err
		if !retryable(err) {
			return reconnected{err: err}
		}
	}
}

// retryable reports whether a failed reconnection attempt may succeed if
// tried again. Refusals of the join itself (the name taken by someone else
// once the session expired, the name invalid) will not change.
func retryable(err error) bool {
	if errors.Is(err, errNoWelcome) {
		return true // the server went away mid-join
	}
	st, ok := status.FromError(err)
	if !ok {
		var ee *exitError
		// dial's errors: unreachable is worth retrying, a bad address is not.
		return errors.As(err, &ee) && ee.code == exitUnreachable
	}
	switch st.Code() {
	case codes.AlreadyExists, codes.InvalidArgument, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented, codes.Aborted:
		return false
	}
	return true
}

// resumable reports whether a session whose stream ended with err, which
// the user did not ask for, should be taken back by reconnecting. A broken
// connection does not always end as UNAVAILABLE: a stream reset by a proxy
// or a connection cut mid-frame may surface as INTERNAL, UNKNOWN or
// CANCELED; chatd going away (it may come back within the grace period, or
// a restarted one gives a fresh snapshot) is UNAVAILABLE, and dropping us
// as too slow RESOURCE_EXHAUSTED. So every end is resumable but these:
// an OK end (io.EOF: a logout, which cannot be resumed); ABORTED (another
// client took the session over with its token: fighting it back would
// never end); and the refusals of a join (INVALID_ARGUMENT, ALREADY_EXISTS,
// FAILED_PRECONDITION, DEADLINE_EXCEEDED), which joining again would only
// meet again.
func resumable(err error) bool {
	if err == nil || errors.Is(err, io.EOF) {
		return false
	}
	switch status.Code(err) {
	case codes.OK, codes.Aborted,
		codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.DeadlineExceeded:
		return false
	}
	return true
}

// reason is why a stream ended or a join failed, as a person should read
// it.
func reason(err error) string {
	if st, ok := status.FromError(err); ok {
		return sanitize(st.Message(), "")
	}
	return err.Error()
}

// reconnectFailed is the error of a session that lost its connection with
// lost and could not get back: last is why the last attempt failed.
func reconnectFailed(lost, last error, timeout time.Duration) error {
	why := reason(last)
	if st, ok := status.FromError(last); ok && st.Code() == codes.AlreadyExists {
		why = "the name was taken by someone else while we were away: " + why
	}
	if !retryable(last) {
		return withExitCode(exitConnLost, fmt.Errorf("connection lost: %s; cannot rejoin: %s", reason(lost), why))
	}
	return withExitCode(exitConnLost, fmt.Errorf("connection lost: %s; could not reconnect within %s: %s", reason(lost), timeout, why))
}
