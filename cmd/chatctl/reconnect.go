package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// link is one connection to chatd and the joined Chat stream on it.
type link struct {
	stream chatStream       // a *chatclient.Stream, but in tests
	conn   *grpc.ClientConn // the stream's connection, for unary calls (/history)
	server int              // the server it is to: an index in connector.servers
}

// close ends the stream and the connection.
func (l *link) close() { l.stream.Close() }

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
// the stream's status, dial's errors or chatclient.ErrNoWelcome: see
// joinError.
func (c *connector) connect(ctx context.Context, server int, dialTimeout time.Duration, join *chatv1.Join) (*link, *chatv1.ChatResponse, error) {
	addr := c.servers[server]
	stream, welcome, err := chatclient.Open(ctx, addr, clientConfig(dialTimeout, &c.opts.security), join)
	if err != nil {
		return nil, nil, dialError(addr, &c.opts.security, err)
	}
	return &link{stream: stream, conn: stream.Conn(), server: server}, welcome, nil
}

// reconnected is the outcome of reconnect.
type reconnected struct {
	link    *link
	welcome *chatv1.ChatResponse
	err     error // why reconnect gave up; link is nil then
}

// reconnect joins with join (which carries the resume token) until one
// attempt succeeds, one fails in a way retrying cannot fix, deadline
// passes, or ctx is cancelled, waiting between attempts as
// chatclient.RoundWait says. lost is the server whose connection broke:
// the attempts go to the servers after it in turn, going round, so that
// with several servers the first goes to another one (the one lost is
// likely restarting), and the one lost is tried last in each round.
func (c *connector) reconnect(ctx context.Context, deadline time.Time, join *chatv1.Join, lost int) reconnected {
	var (
		l *link
		w *chatv1.ChatResponse
	)
	r := chatclient.Retry{Servers: len(c.servers), Lost: lost, Deadline: deadline, Retryable: retryable}
	server, err := r.Do(ctx, func(ctx context.Context, server int) error {
		actx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		var err error
		l, w, err = c.connect(actx, server, min(c.opts.dialTimeout, time.Until(deadline)), join)
		return err
	})
	var gaveUp *chatclient.GaveUpError
	switch {
	case err == nil:
		return reconnected{link: l, welcome: w}
	case ctx.Err() != nil:
		return reconnected{err: ctx.Err()}
	case errors.As(err, &gaveUp):
		return reconnected{err: c.gaveUp(gaveUp.Failures)}
	case c.several():
		return reconnected{err: &serverError{c.servers[server], err}}
	}
	return reconnected{err: err}
}

// gaveUp is why a reconnection that ran out of time failed: the one
// server's last failure, or with several each one's, named.
func (c *connector) gaveUp(last []chatclient.Failure) error {
	switch {
	case len(last) == 0:
		return errors.New("no time left to try")
	case !c.several():
		return last[0].Err
	}
	f := make(failures, len(last))
	for i, l := range last {
		f[i] = &serverError{c.servers[l.Server], l.Err}
	}
	return f
}

// retryable reports whether a failed reconnection attempt may succeed if
// tried again, as chatclient.Retryable does; dial's errors are explained
// by then (see dialError): unreachable is worth retrying, a bad address is
// not.
func retryable(err error) bool {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code == exitUnreachable
	}
	return chatclient.Retryable(err)
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
