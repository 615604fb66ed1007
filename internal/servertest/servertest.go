// Package servertest starts an in-process chat server on a real TCP port of
// 127.0.0.1 for tests and benchmarks, and stops it when they end.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chatd/chatd/server"
)

// shutdownTimeout bounds the Shutdown at the end of a test: long enough for
// a busy machine, short enough that a hung stream fails the test quickly.
const shutdownTimeout = 10 * time.Second

// Start serves cfg, with opts, until tb ends, logging to log, and returns
// the server and the address it listens on. At the end it shuts the server
// down (a test may already have done so: a second Shutdown is harmless)
// and fails tb if Serve did not end cleanly.
func Start(tb testing.TB, cfg server.Config, log *slog.Logger, opts ...server.Option) (*server.Server, string) {
	tb.Helper()
	srv, err := server.New(cfg, log, opts...)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			tb.Errorf("Serve returned %v; want nil after Shutdown", err)
		}
	})
	return srv, lis.Addr().String()
}

// StartOn is Start for a chat of its own on log (a data directory's, say),
// with the node's settings ccfg: it runs the node and waits until it has
// caught up with its log before it returns.
func StartOn(tb testing.TB, cfg server.Config, ccfg server.ClusterConfig, log server.Log, logger *slog.Logger, opts ...server.Option) (*server.Server, string) {
	tb.Helper()
	srv, err := server.NewCluster(cfg, ccfg, log, logger, opts...)
	if err != nil {
		tb.Fatalf("server.NewCluster: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Cluster().Run(ctx) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer scancel()
		srv.Shutdown(sctx)
		if err := <-served; err != nil {
			tb.Errorf("Serve returned %v; want nil after Shutdown", err)
		}
		cancel()
		if err := <-ran; err != nil {
			tb.Errorf("the node's Run returned %v; want nil once stopped", err)
		}
	})
	deadline := time.Now().Add(shutdownTimeout)
	for !srv.Serving() {
		if time.Now().After(deadline) {
			tb.Fatalf("the node did not catch up with its log within %s", shutdownTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return srv, lis.Addr().String()
}
