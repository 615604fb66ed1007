package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatd/chatd/chatclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// clientConfig is how chatclient dials a server for chatctl: within
// timeout, with sec's transport security and token. chatclient adds
// chatd's fixed flow-control windows and keepalive.
func clientConfig(timeout time.Duration, sec *security) chatclient.Config {
	return chatclient.Config{DialTimeout: timeout, DialOptions: sec.dialOptions()}
}

// dial connects to chatd at addr, one of --server's, with sec's transport
// security, and waits until the connection is ready, so that an absent
// server is reported as such (exit code 3) rather than as the first RPC's
// UNAVAILABLE: at once if the connection is refused (or the name does not
// resolve, or the server closes it), else after timeout. It does not
// retry; the callers move on to the next server (see tryInTurn), and
// join's reconnection calls it again, with backoff, as long as the error
// has exit code 3.
func dial(ctx context.Context, addr string, timeout time.Duration, sec *security) (*grpc.ClientConn, error) {
	conn, err := chatclient.Dial(ctx, addr, clientConfig(timeout, sec))
	if err != nil {
		return nil, dialError(addr, sec, err)
	}
	return conn, nil
}

// dialError explains why chatclient could not connect to addr, with the
// exit code for it. An error of the join that followed (a status, or
// chatclient.ErrNoWelcome) is returned as it is: joinError explains those.
func dialError(addr string, sec *security, err error) error {
	if _, ok := status.FromError(err); ok || errors.Is(err, chatclient.ErrNoWelcome) {
		return err
	}
	var ue *chatclient.UnreachableError
	switch {
	case errors.As(err, &ue):
		if ue.Err == nil && !ue.TimedOut {
			// Connected, but it closed: often TLS on one side only.
			if why := sec.explainHandshake(addr); why != "" {
				return withExitCode(exitUnreachable, errors.New(why))
			}
		}
		return withExitCode(exitUnreachable, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted while connecting to %s", addr)
	default:
		// parse checked the address already; this is a bad one all the same.
		return usageErrorf("bad --server %q: %v", addr, err)
	}
}
