package server_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/natstest"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// testCluster is several chatd nodes on one real NATS server (in this
// process), each serving on its own TCP port.
type testCluster struct {
	t      *testing.T
	nats   *natstest.Server
	prefix string
	cfg    server.Config
	ccfg   server.ClusterConfig
	nodes  []*servertest.Node
}

// testClusterConfig is the cluster settings of tests: a short node timeout,
// so that a crash is found within a test's patience.
func testClusterConfig(edit func(*server.ClusterConfig)) server.ClusterConfig {
	ccfg := server.DefaultClusterConfig()
	ccfg.NodeTimeout = 2 * time.Second
	ccfg.SnapshotEvery = 200 * time.Millisecond
	if edit != nil {
		edit(&ccfg)
	}
	return ccfg
}

// startCluster starts n nodes with cfg and ccfg on a new NATS server.
func startCluster(t *testing.T, n int, cfg server.Config, ccfg server.ClusterConfig) (*testCluster, []*testServer) {
	t.Helper()
	tc := &testCluster{t: t, nats: natstest.Start(t), prefix: "test", cfg: cfg, ccfg: ccfg}
	servers := make([]*testServer, n)
	for i := range servers {
		servers[i] = tc.startNode(fmt.Sprintf("n%d", i+1))
	}
	return tc, servers
}

// startNode starts one more node of the cluster.
func (tc *testCluster) startNode(name string) *testServer {
	t := tc.t
	t.Helper()
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	ccfg := tc.ccfg
	ccfg.Name = name
	node := servertest.StartNode(t, tc.cfg, ccfg, tc.nats.URL(), tc.prefix, slog.New(slog.NewTextHandler(logw, nil)))
	tc.nodes = append(tc.nodes, node)
	ts := &testServer{srv: node.Srv, addr: node.Addr, node: node}
	ts.admin = dial(t, ts.addr)
	return ts
}

// TestClusterPresenceAndMessages has users on different nodes see each
// other join, talk in general and privately, and leave, and every node
// list them all.
func TestClusterPresenceAndMessages(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 3, testConfig(nil), testClusterConfig(nil))
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	if got := names(bob.welcome.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("bob's welcome lists %v; want [alice bob]", got)
	}
	carol := join(t, nodes[2], "carol")
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "carol", false)
	for i, ts := range nodes {
		if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
			t.Fatalf("ListUsers on node %d = %v; want [alice bob carol]", i+1, got)
		}
	}

	alice.say(t, "hello from n1", "a1")
	expectMessage(t, "alice", alice.next(t), "alice", "hello from n1", "a1")
	for _, c := range []*client{bob, carol} {
		expectMessage(t, c.name, c.next(t), "alice", "hello from n1", "a1")
	}
	carol.send(t, sendReq("psst", "", "bob", "c1"))
	expectMessage(t, "carol", carol.next(t), "carol", "psst", "c1")
	expectMessage(t, "bob", bob.next(t), "carol", "psst", "c1")

	bob.send(t, leaveReq())
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	expectLeft(t, "carol", carol.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	for i, ts := range nodes {
		waitFor(t, fmt.Sprintf("node %d to list alice and carol", i+1), func() bool {
			return slices.Equal(listUsers(t, ts), []string{"alice", "carol"})
		})
	}
}

// TestClusterNameRace joins "alice" and "ALICE" at the same instant on two
// nodes, many times: exactly one wins each time, and the other is told the
// name is taken.
func TestClusterNameRace(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 2, testConfig(nil), testClusterConfig(nil))
	conns := []*grpc.ClientConn{dial(t, nodes[0].addr), dial(t, nodes[1].addr)}
	for round := range 20 {
		name := fmt.Sprintf("racer%02d", round)
		names := []string{name, strings.ToUpper(name)}
		streams := []*client{openStream(t, conns[0]), openStream(t, conns[1])}
		var wg sync.WaitGroup
		for i, c := range streams {
			c.name = names[i]
			wg.Go(func() { c.send(t, joinReq(names[i])) })
		}
		wg.Wait()
		won := 0
		for _, c := range streams {
			ev, err := c.recv(waitTimeout)
			switch {
			case err == nil && ev.GetWelcome() != nil:
				won++
			case err != nil:
				checkEnd(t, c.name, err, codes.AlreadyExists)
			default:
				t.Fatalf("round %d: %s got %v; want a welcome or ALREADY_EXISTS", round, c.name, ev)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %q and %q joined; want exactly one", round, won, names[0], names[1])
		}
	}
}
