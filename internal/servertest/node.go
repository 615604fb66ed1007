package servertest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/jslog"
	"github.com/chatd/chatd/server"
)

// Node is a chat server that is one node of a cluster on NATS, serving on
// a real TCP port of 127.0.0.1.
type Node struct {
	Srv  *server.Server
	Addr string

	log    *jslog.Log
	cancel context.CancelFunc
	ran    chan error
	served chan error
	done   bool
}

// StartNode starts a cluster node on the NATS at natsURL, whose log is
// named by prefix, and waits until it serves (it has caught up with the
// log). It is stopped gracefully when tb ends, unless the test stopped or
// killed it first. opts go to server.NewCluster.
func StartNode(tb testing.TB, cfg server.Config, ccfg server.ClusterConfig, natsURL, prefix string, log *slog.Logger, opts ...server.Option) *Node {
	tb.Helper()
	return StartNodeWrapped(tb, cfg, ccfg, natsURL, prefix, log, nil, opts...)
}

// StartNodeWrapped is StartNode with the node's log passed through wrap
// first (if not nil), for a test that makes the log misbehave.
func StartNodeWrapped(tb testing.TB, cfg server.Config, ccfg server.ClusterConfig, natsURL, prefix string, log *slog.Logger, wrap func(server.Log) server.Log, opts ...server.Option) *Node {
	tb.Helper()
	jcfg := jslog.DefaultConfig()
	jcfg.URLs, jcfg.Prefix, jcfg.Name, jcfg.Logger = natsURL, prefix, ccfg.Name, log
	jcfg.AppendTimeout = ccfg.ApplyTimeout
	jcfg.Settings = server.ClusterSettings(cfg, ccfg)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	l, err := jslog.Open(ctx, jcfg)
	if err != nil {
		tb.Fatalf("jslog.Open: %v", err)
	}
	var clog server.Log = l
	if wrap != nil {
		clog = wrap(l)
	}
	srv, err := server.NewCluster(cfg, ccfg, clog, log, opts...)
	if err != nil {
		l.Close()
		tb.Fatalf("server.NewCluster: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	n := &Node{Srv: srv, Addr: lis.Addr().String(), log: l, ran: make(chan error, 1), served: make(chan error, 1)}
	rctx, rcancel := context.WithCancel(context.Background())
	n.cancel = rcancel
	go func() { n.ran <- srv.Cluster().Run(rctx) }()
	go func() { n.served <- srv.Serve(lis) }()
	tb.Cleanup(func() { n.Stop(tb) })
	deadline := time.Now().Add(shutdownTimeout)
	for !srv.Cluster().Serving() {
		if time.Now().After(deadline) {
			tb.Fatalf("cluster node %s did not catch up with the log within %s", ccfg.Name, shutdownTimeout)
		}
		select {
		case err := <-n.ran:
			n.ran <- err // for Stop, in the cleanup
			tb.Fatalf("cluster node %s stopped: %v", ccfg.Name, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return n
}

// Stop shuts the node down gracefully, as SIGTERM does: the other nodes
// hold its users while they reconnect.
func (n *Node) Stop(tb testing.TB) {
	tb.Helper()
	if n.done {
		return
	}
	n.done = true
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	n.Srv.Shutdown(ctx)
	if err := <-n.served; err != nil {
		tb.Errorf("Serve returned %v; want nil after Shutdown", err)
	}
	n.cancel()
	if err := <-n.ran; err != nil {
		tb.Errorf("Cluster.Run returned %v; want nil after its context ended", err)
	}
	n.log.Close()
}

// Kill stops the node as a crash would: its connections to clients and to
// NATS close at once, and it tells the cluster nothing.
func (n *Node) Kill(tb testing.TB) {
	tb.Helper()
	if n.done {
		return
	}
	n.done = true
	n.log.Close()
	n.cancel()
	<-n.ran
	n.Srv.Stop()
	<-n.served
}
