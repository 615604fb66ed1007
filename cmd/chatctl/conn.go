package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// dial connects to chatd and waits until the connection is ready, so that an
// absent server is reported as such (exit code 3) within --dial-timeout
// rather than as the first RPC's UNAVAILABLE.
func dial(ctx context.Context, opts *options) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(opts.server,
		// chatd serves plaintext gRPC, on loopback unless told otherwise.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Pings find a server that vanished without closing the connection
		// while a session is idle. chatd disconnects clients that ping more
		// often than every 10s, so stay well above that.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             20 * time.Second,
			PermitWithoutStream: false,
		}),
	)
	if err != nil {
		// NewClient only fails on a target it cannot parse.
		return nil, usageErrorf("bad --server %q: %v", opts.server, err)
	}
	wctx, cancel := context.WithTimeout(ctx, opts.dialTimeout)
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return conn, nil
		}
		// TRANSIENT_FAILURE is not final: the channel retries with backoff,
		// and chatd may be starting up, so keep waiting until the deadline.
		if !conn.WaitForStateChange(wctx, state) {
			conn.Close()
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, fmt.Errorf("interrupted while connecting to %s", opts.server)
			}
			return nil, withExitCode(exitUnreachable,
				fmt.Errorf("cannot reach chatd at %s within %s (is it running?)", opts.server, opts.dialTimeout))
		}
	}
}
