package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatd/chatd/internal/grpcdial"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// dial connects to chatd at addr, one of --server's, with sec's transport
// security, and waits until the connection is ready, so that an absent
// server is reported as such (exit code 3) rather than as the first RPC's
// UNAVAILABLE: at once if the connection is refused (or the name does not
// resolve, or the server closes it), else after timeout. It does not
// retry; the callers move on to the next server (see tryInTurn), and
// join's reconnection calls it again, with backoff, as long as the error
// has exit code 3.
func dial(ctx context.Context, addr string, timeout time.Duration, sec *security) (*grpc.ClientConn, error) {
	// No bandwidth-delay pings for every event received: they cost chatd
	// a write each (see grpcdial.FixedWindows).
	opts := append(sec.dialOptions(), grpcdial.FixedWindows()...)
	conn, err := grpcdial.Dial(ctx, addr, timeout, append(opts,
		// Pings find a server that vanished without closing the connection
		// while a session is idle. chatd disconnects clients that ping more
		// often than every 10s, so stay well above that.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             20 * time.Second,
			PermitWithoutStream: false,
		}))...,
	)
	var ue *grpcdial.UnreachableError
	switch {
	case err == nil:
		return conn, nil
	case errors.As(err, &ue):
		if ue.Err == nil && !ue.TimedOut {
			// Connected, but it closed: often TLS on one side only.
			if why := sec.explainHandshake(addr); why != "" {
				return nil, withExitCode(exitUnreachable, errors.New(why))
			}
		}
		return nil, withExitCode(exitUnreachable, err)
	case errors.Is(err, context.Canceled):
		return nil, fmt.Errorf("interrupted while connecting to %s", addr)
	default:
		// parse checked the address already; this is a bad one all the same.
		return nil, usageErrorf("bad --server %q: %v", addr, err)
	}
}
