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
	server int                // the server it is to: an index in connector.servers
}

// close ends the stream and the connection.
func (l *link) close() {
	l.cancel()
	_ = l.conn.Close()
}

// connector makes links to chatd. It is not changed after it is made, so
// any goroutine may use it.
type connector struct {
	opts    *options
	servers []string // --server's addresses, in the order tried (see inTurn)
}

// newConnector returns a connector to opts's servers, in an order of its
// own.
func newConnector(opts *options) *connector {
	return &connector{opts: opts, servers: inTurn(opts.servers)}
}

// several reports whether there is more than one server to move between;
// with one, chatctl says nothing about servers it would not say anyway. A
// nil connector (a session without one, in tests) has none.
func (c *connector) several() bool { return c != nil && len(c.servers) > 1 }

// first connects to the first server that takes join, trying each in turn
// (see tryInTurn), and returns the link and the welcome, or why it could
// not, as joinError explains it.
func (c *connector) first(ctx context.Context, stderr io.Writer, join *chatv1.Join) (*link, *chatv1.ChatResponse, error) {
	var (
		l       *link
		welcome *chatv1.ChatResponse
	)
	_, err := tryInTurn(ctx, c.servers, stderr, func(server int) error {
		var err error
		l, welcome, err = c.connect(ctx, server, c.opts.dialTimeout, join)
		return err
	}, joinError)
	if err != nil {
		return nil, nil, err
	}
	return l, welcome, nil
}

// connect dials chatd at server, an index in c.servers, within dialTimeout
// and sends join. ctx bounds the dial and the wait for the welcome; once
// welcomed, the stream outlives ctx, until the link is closed. Errors are
// the stream's status, dial's errors or errNoWelcome: see joinError.
func (c *connector) connect(ctx context.Context, server int, dialTimeout time.Duration, join *chatv1.Join) (*link, *chatv1.ChatResponse, error) {
	conn, err := dial(ctx, c.servers[server], dialTimeout, &c.opts.security)
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
	return &link{conn: conn, stream: stream, cancel: cancel, server: server}, welcome, nil
}

// reconnected is the outcome of reconnect.
type reconnected struct {
	link    *link
	welcome *chatv1.ChatResponse
	err     error // why reconnect gave up; link is nil then
}

// reconnect joins with join (which carries the resume token) until one
// attempt succeeds, one fails in a way retrying cannot fix, deadline
// passes, or ctx is cancelled, waiting between attempts as reconnectWait
// says. lost is the server whose connection broke: the attempts go to the
// servers after it in turn, going round, so that with several servers the
// first goes to another one (the one lost is likely restarting), and the
// one lost is tried last in each round.
func (c *connector) reconnect(ctx context.Context, deadline time.Time, join *chatv1.Join, lost int) reconnected {
	last := make([]error, len(c.servers)) // each server's last failure
	tried := []int{}                      // the servers that failed, in the order first tried
	gaveUp := func() reconnected {
		switch {
		case len(tried) == 0:
			return reconnected{err: errors.New("no time left to try")}
		case !c.several():
			return reconnected{err: last[0]}
		}
		f := make(failures, len(tried))
		for i, server := range tried {
			f[i] = &serverError{c.servers[server], last[server]}
		}
		return reconnected{err: f}
	}
	for n := 0; ; n++ {
		server := (lost + 1 + n) % len(c.servers)
		wait := reconnectWait(n, len(c.servers))
		if time.Until(deadline) < wait {
			return gaveUp()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return reconnected{err: ctx.Err()}
		case <-t.C:
		}
		actx, cancel := context.WithDeadline(ctx, deadline)
		l, w, err := c.connect(actx, server, min(c.opts.dialTimeout, time.Until(deadline)), join)
		cancel()
		if err == nil {
			return reconnected{link: l, welcome: w}
		}
		if ctx.Err() != nil {
			return reconnected{err: ctx.Err()}
		}
		if last[server] == nil {
			tried = append(tried, server)
		}
		last[server] = err
		if !retryable(err) {
			if c.several() {
				err = &serverError{c.servers[server], err}
			}
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
		err := fmt.Errorf("connection lost: %s; cannot rejoin: %s", reason(lost), why)
		if c := status.Code(last); c == codes.Unauthenticated || c == codes.PermissionDenied {
			return signInError(err)
		}
		return withExitCode(exitConnLost, err)
	}
	return withExitCode(exitConnLost, fmt.Errorf("connection lost: %s; could not reconnect within %s: %s", reason(lost), timeout, why))
}
