package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/internal/natstest"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// testCluster is several chatd nodes on one real NATS server (in this
// process), each serving on its own TCP port.
type testCluster struct {
	t      *testing.T
	nats   *natstest.Server
	prefix string
	cfg    server.Config
	ccfg   server.ClusterConfig
	opts   []server.Option // the nodes' options
	nodes  []*servertest.Node
}

// testClusterConfig is the cluster settings of tests: a short node timeout,
// so that a crash is found within a test's patience, but longer than a
// node takes to get back to a restarted NATS on a busy machine.
func testClusterConfig(edit func(*server.ClusterConfig)) server.ClusterConfig {
	ccfg := server.DefaultClusterConfig()
	ccfg.NodeTimeout = 3 * time.Second
	ccfg.SnapshotEvery = 200 * time.Millisecond
	if edit != nil {
		edit(&ccfg)
	}
	return ccfg
}

// startCluster starts n nodes with cfg and ccfg on a new NATS server.
func startCluster(t *testing.T, n int, cfg server.Config, ccfg server.ClusterConfig) (*testCluster, []*testServer) {
	t.Helper()
	return startClusterWith(t, n, cfg, ccfg)
}

// startClusterWith is startCluster with the nodes built with opts.
func startClusterWith(t *testing.T, n int, cfg server.Config, ccfg server.ClusterConfig, opts ...server.Option) (*testCluster, []*testServer) {
	t.Helper()
	tc := &testCluster{t: t, nats: natstest.Start(t), prefix: "test", cfg: cfg, ccfg: ccfg, opts: opts}
	servers := make([]*testServer, n)
	for i := range servers {
		servers[i] = tc.startNode(fmt.Sprintf("n%d", i+1))
	}
	return tc, servers
}

// startNode starts one more node of the cluster.
func (tc *testCluster) startNode(name string) *testServer {
	tc.t.Helper()
	return tc.startWrappedNode(name, nil)
}

// startWrappedNode is startNode with the node's log passed through wrap,
// for a test that makes it misbehave.
func (tc *testCluster) startWrappedNode(name string, wrap func(server.Log) server.Log) *testServer {
	t := tc.t
	t.Helper()
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	ccfg := tc.ccfg
	ccfg.Name = name
	node := servertest.StartNodeWrapped(t, tc.cfg, ccfg, tc.nats.URL(), tc.prefix, slog.New(slog.NewTextHandler(logw, nil)), wrap, tc.opts...)
	tc.nodes = append(tc.nodes, node)
	ts := &testServer{srv: node.Srv, addr: node.Addr, node: node}
	ts.admin = dial(t, ts.addr)
	return ts
}

// onEachEngine runs body as two parallel subtests: on a single server
// (each of the three "nodes" it is given is that server) and on a cluster
// of three nodes. One test body, two engines: the cluster must behave as
// one server.
func onEachEngine(t *testing.T, cfg server.Config, body func(t *testing.T, nodes []*testServer)) {
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, cfg)
		body(t, []*testServer{ts, ts, ts})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		_, nodes := startCluster(t, 3, cfg, testClusterConfig(nil))
		body(t, nodes)
	})
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

	// Refused when applied, after the node let carol go on: the refusal
	// comes back as the answer to her request.
	carol.send(t, sendReq("anyone?", "nowhere", "", "c2"))
	expectRejected(t, "carol", carol.next(t), "c2", codes.NotFound)
	carol.say(t, "then general", "c3")
	for _, c := range []*client{alice, bob, carol} {
		expectMessage(t, c.name, c.next(t), "carol", "then general", "c3")
	}

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

// TestClusterNodeStopHoldsItsUsers stops a node as SIGTERM does: its
// streams end with UNAVAILABLE, nobody sees its users leave, and they
// resume on another node with everything they missed and no flap.
func TestClusterNodeStopHoldsItsUsers(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 3, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }), testClusterConfig(nil))
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	lastSeq := alice.lastSeq

	nodes[0].node.Stop(t)
	if st := alice.expectEnd(t, codes.Unavailable); !strings.Contains(st.Message(), "reconnect") {
		t.Errorf("alice's stream ended with %q; want it to say to reconnect", st.Message())
	}
	bob.say(t, "while alice moves", "b1")
	expectMessage(t, "bob", bob.next(t), "bob", "while alice moves", "b1")
	if got := listUsers(t, nodes[1]); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("ListUsers on node 2 = %q while alice moves; want [alice bob]", got)
	}

	back := resumeStream(t, nodes[2], alice, lastSeq)
	expectRecovery(t, back, alice.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	expectMessage(t, "alice", back.next(t), "bob", "while alice moves", "b1")
	back.say(t, "back", "a1")
	expectMessage(t, "alice", back.next(t), "alice", "back", "a1")
	// The next thing bob hears is alice's message: no user_left, no
	// user_joined.
	expectMessage(t, "bob", bob.next(t), "alice", "back", "a1")
}

// TestClusterHeldUserNotBackLeaves: a user of a stopped node who does not
// come back within the grace period is announced as gone then, and the
// name is free.
func TestClusterHeldUserNotBackLeaves(t *testing.T) {
	t.Parallel()
	const grace = 500 * time.Millisecond
	_, nodes := startCluster(t, 2, testConfig(func(c *server.Config) { c.ResumeGrace = grace }), testClusterConfig(nil))
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	stopped := time.Now()
	nodes[0].node.Stop(t)
	alice.expectEnd(t, codes.Unavailable)
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
	// The log's clock moves in heartbeats: a tenth of the node timeout.
	if took := time.Since(stopped); took < grace || took > grace+time.Second {
		t.Errorf("alice was announced gone %s after her node stopped; want after the %s grace, within a heartbeat or two", took, grace)
	}
	join(t, nodes[1], "alice")
}

// TestClusterNodeCrash kills a node: within the node timeout the others
// see its users leave, disconnected, and the users resume elsewhere with
// nothing lost.
func TestClusterNodeCrash(t *testing.T) {
	t.Parallel()
	ccfg := testClusterConfig(nil)
	_, nodes := startCluster(t, 3, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }), ccfg)
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	lastSeq := alice.lastSeq

	killed := time.Now()
	nodes[0].node.Kill(t)
	ev := bob.nextWithin(t, ccfg.NodeTimeout+time.Second)
	expectLeft(t, "bob", ev, "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if took := time.Since(killed); took > ccfg.NodeTimeout {
		t.Errorf("bob saw alice leave %s after her node died; want within the node timeout, %s", took, ccfg.NodeTimeout)
	}
	bob.say(t, "are you there?", "b1")
	expectMessage(t, "bob", bob.next(t), "bob", "are you there?", "b1")

	back := resumeStream(t, nodes[2], alice, lastSeq)
	expectRecovery(t, back, alice.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	expectMessage(t, "alice", back.next(t), "bob", "are you there?", "b1")
	expectJoined(t, "bob", bob.next(t), "alice", true)
}

// TestClusterLateNodeHasTheState starts a node after the chat has been
// going: from the last snapshot and the log after it, it lists the same
// users and channels, and gives joiners the same history.
func TestClusterLateNodeHasTheState(t *testing.T) {
	t.Parallel()
	tc, nodes := startCluster(t, 1, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }), testClusterConfig(nil))
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[0], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bobSeq := bob.lastSeq
	bob.cancel() // parked, in the snapshot
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	alice.joinChannel(t, "room", "room")
	for i := range 5 {
		alice.send(t, sendReq(fmt.Sprint("before the snapshot ", i), "room", "", ""))
		alice.next(t)
	}
	// Let a snapshot be saved, then add to the log after it.
	cl := nodes[0].node.Srv.Cluster()
	at := cl.Applied()
	waitFor(t, "a snapshot to be saved", func() bool { return cl.Saved() >= at })
	alice.send(t, sendReq("after the snapshot", "room", "", ""))
	alice.next(t)
	alice.say(t, "where is bob?", "")
	alice.next(t)

	late := tc.startNode("late")
	if from := late.node.Srv.Cluster().StartedFrom(); from <= at {
		t.Errorf("the late node started from log position %d; want after the snapshot of %d", from, at)
	}
	if got := listUsers(t, late); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("ListUsers on the late node = %q; want [alice]", got)
	}
	// bob, parked before the snapshot, resumes on the late node with
	// everything he missed.
	back := resumeStream(t, late, bob, bobSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, bobSeq)
	expectMessage(t, "bob", back.next(t), "alice", "where is bob?", "")
	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	carol := join(t, late, "carol")
	expectJoined(t, "alice", alice.next(t), "carol", false)
	entered := carol.joinChannel(t, "room", "room")
	var got []string
	for _, ev := range entered.history {
		got = append(got, ev.GetMessage().GetText())
	}
	want := []string{"before the snapshot 0", "before the snapshot 1", "before the snapshot 2", "before the snapshot 3", "before the snapshot 4", "after the snapshot"}
	if !slices.Equal(got, want) {
		t.Errorf("carol, on the late node, got room's history %q; want %q", got, want)
	}
}

// TestClusterRidesOutNATSRestart stops NATS under a live chat: the nodes
// keep their streams, refuse what needs the log with UNAVAILABLE, and
// carry on when NATS is back, with nothing lost.
func TestClusterRidesOutNATSRestart(t *testing.T) {
	t.Parallel()
	tc, nodes := startCluster(t, 2, testConfig(nil), testClusterConfig(nil))
	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)

	tc.nats.Stop()
	waitFor(t, "node 1 to say it is not serving", func() bool { return !nodes[0].node.Srv.Cluster().Serving() })
	alice.say(t, "into the void", "a1")
	if ev := alice.next(t); ev.GetRejected().GetCode() != int32(codes.Unavailable) || !strings.Contains(ev.GetRejected().GetReason(), "try again") {
		t.Errorf("alice's message while NATS is down got %v; want it rejected UNAVAILABLE, saying to try again", ev)
	}
	// A logout meanwhile ends the stream at once, and is told to the
	// others once NATS is back.
	bob.send(t, leaveReq())
	bob.expectEnd(t, codes.OK)
	tc.nats.Restart()
	waitFor(t, "node 1 to serve again", func() bool { return nodes[0].node.Srv.Cluster().Serving() })
	alice.say(t, "back", "a2")
	var left, echoed bool
	for !left || !echoed {
		switch ev := alice.next(t); {
		case ev.GetUserLeft() != nil:
			expectLeft(t, "alice", ev, "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
			left = true
		default:
			expectMessage(t, "alice", ev, "alice", "back", "a2")
			echoed = true
		}
	}
	waitFor(t, "bob gone from node 2's list", func() bool { return slices.Equal(listUsers(t, nodes[1]), []string{"alice"}) })
}

// TestClusterJoinsGivenUpLeaveNoGhost: streams that join and vanish at
// once, while their join is on its way through the log, leave no user
// online behind them.
func TestClusterJoinsGivenUpLeaveNoGhost(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 2, testConfig(func(c *server.Config) { c.ResumeGrace = 0 }), testClusterConfig(nil))
	conn := dial(t, nodes[0].addr)
	for i := range 50 {
		c := openStream(t, conn)
		c.send(t, joinReq(fmt.Sprintf("ghost%02d", i)))
		if i%2 == 0 {
			time.Sleep(time.Duration(i) * 20 * time.Microsecond) // some cancels land before the apply, some after
		}
		c.cancel()
	}
	join(t, nodes[1], "alice")
	for _, ts := range nodes {
		waitFor(t, "only alice online", func() bool { return slices.Equal(listUsers(t, ts), []string{"alice"}) })
	}
}

// lostAnswerLog is a node's log that loses the answer to an append of an
// entry containing its marker: the log takes the entry, and Append
// returns an error only once the node has applied it, as a JetStream ack
// lost on its way back (or timed out) after the stream stored the message
// would look.
type lostAnswerLog struct {
	server.Log
	marker []byte

	mu      sync.Mutex
	applied map[string]chan struct{} // by entry data: closed once applied
}

func (l *lostAnswerLog) Append(ctx context.Context, id string, data []byte) error {
	if !bytes.Contains(data, l.marker) {
		return l.Log.Append(ctx, id, data)
	}
	done := make(chan struct{})
	l.mu.Lock()
	l.applied[string(data)] = done
	l.mu.Unlock()
	if err := l.Log.Append(ctx, id, data); err != nil {
		return err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return errors.New("lostAnswerLog: the log took the entry but its answer was lost")
}

func (l *lostAnswerLog) Follow(ctx context.Context, from uint64, apply func(server.Entry) error) error {
	return l.Log.Follow(ctx, from, func(e server.Entry) error {
		err := apply(e)
		l.mu.Lock()
		if done, ok := l.applied[string(e.Data)]; ok {
			close(done)
			delete(l.applied, string(e.Data))
		}
		l.mu.Unlock()
		return err
	})
}

// TestClusterAnswerLostAfterApply has the log take a message and apply it
// before the append's answer comes back as an error. The message went
// through, so its sender has its copy as the acknowledgement and no
// rejection, and its session carries on: a pipelined message whose
// outcome was settled twice once left the session's handler stuck for
// good (found by goleak in CI).
func TestClusterAnswerLostAfterApply(t *testing.T) {
	t.Parallel()
	cfg := testConfig(func(c *server.Config) { c.MessageBurst = 100 })
	tc := &testCluster{t: t, nats: natstest.Start(t), prefix: "test", cfg: cfg, ccfg: testClusterConfig(nil)}
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	ccfg := tc.ccfg
	ccfg.Name = "n1"
	wrap := func(l server.Log) server.Log {
		return &lostAnswerLog{Log: l, marker: []byte("answer lost"), applied: map[string]chan struct{}{}}
	}
	node := servertest.StartNodeWrapped(t, tc.cfg, ccfg, tc.nats.URL(), tc.prefix, slog.New(slog.NewTextHandler(logw, nil)), wrap, tc.opts...)
	ts := &testServer{srv: node.Srv, addr: node.Addr, node: node}
	ts.admin = dial(t, ts.addr)

	alice := join(t, ts, "alice")
	alice.say(t, "the answer lost on its way", "a1")
	expectMessage(t, "alice", alice.next(t), "alice", "the answer lost on its way", "a1")
	// More than a pipeline's worth after it, at once: none of its slots
	// is lost.
	for i := range 40 {
		id := fmt.Sprintf("b%d", i)
		alice.say(t, "after "+id, id)
	}
	for i := range 40 {
		id := fmt.Sprintf("b%d", i)
		expectMessage(t, "alice", alice.next(t), "alice", "after "+id, id)
	}
}

// frozenLog is a node's log that the test can freeze, as SIGSTOP freezes
// the node's process: while frozen, nothing the node appends (heartbeats
// included) reaches the log and the node applies nothing, so the other
// nodes hear nothing from it and give it up. The node's streams go on
// reading meanwhile, as the kernel goes on taking what clients send: the
// first message read waits in Append, the next ones in the stream. The
// node wakes in two steps, so that its streams' appends, then its applying
// of the log, go on: the order in which a node that gets SIGCONT may well
// run them, its streams reading what waited in their sockets while it
// fetches what the log took meanwhile. It records what the log took of
// the streams' requests: the client_id of each message, and "#channel"
// for each channel join.
type frozenLog struct {
	server.Log

	mu       sync.Mutex
	appends  chan struct{} // closed while appends go through
	applies  chan struct{} // closed while the node applies the log
	taken    []string      // the requests appended
	appended chan struct{} // has a token after each request appended
}

func newFrozenLog(l server.Log) *frozenLog {
	running := make(chan struct{})
	close(running)
	return &frozenLog{Log: l, appends: running, applies: running, appended: make(chan struct{}, 1)}
}

func (l *frozenLog) freeze() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appends, l.applies = make(chan struct{}), make(chan struct{})
}

func (l *frozenLog) thawAppends() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !isClosed(l.appends) {
		close(l.appends)
	}
}

func (l *frozenLog) thawApplies() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !isClosed(l.applies) {
		close(l.applies)
	}
}

func (l *frozenLog) thaw() {
	l.thawAppends()
	l.thawApplies()
}

// wait returns once which (appends or applies) goes through, or ctx ends.
func (l *frozenLog) wait(ctx context.Context, which *chan struct{}) error {
	l.mu.Lock()
	running := *which
	l.mu.Unlock()
	select {
	case <-running:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requests returns the requests appended so far.
func (l *frozenLog) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.taken)
}

func (l *frozenLog) Append(ctx context.Context, id string, data []byte) error {
	if err := l.wait(ctx, &l.appends); err != nil {
		return err
	}
	if err := l.Log.Append(ctx, id, data); err != nil {
		return err
	}
	cmd := &clusterv1.Command{}
	if proto.Unmarshal(data, cmd) != nil {
		return nil
	}
	var req string
	switch {
	case cmd.GetSend() != nil:
		req = cmd.GetSend().GetClientId()
	case cmd.GetJoinChannel() != nil:
		req = "#" + cmd.GetJoinChannel().GetChannel()
	default:
		return nil
	}
	l.mu.Lock()
	l.taken = append(l.taken, req)
	l.mu.Unlock()
	select {
	case l.appended <- struct{}{}:
	default:
	}
	return nil
}

func (l *frozenLog) Follow(ctx context.Context, from uint64, apply func(server.Entry) error) error {
	return l.Log.Follow(ctx, from, func(e server.Entry) error {
		if err := l.wait(ctx, &l.applies); err != nil {
			return err
		}
		return apply(e)
	})
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestClusterWokenNodeRefusesWhatItsStreamsSent freezes a node past the
// node timeout while its user sends, as SIGSTOP then SIGCONT does. The
// other nodes give it up (its user leaves, disconnected) at a point of
// the log before anything it appends once awake: what its stream sent
// cannot be carried out any more. Every message the log took from it must
// come back to the sender refused (UNAVAILABLE, send it again), as a
// stopping node refuses them, not dropped with nobody told; a channel
// join it waited for is refused the same way, if answered at all, and
// does not end the stream as if the user had left; the stream ends
// UNAVAILABLE, saying that what was not answered was not carried out; and
// the user resumes on the woken node and is heard again.
func TestClusterWokenNodeRefusesWhatItsStreamsSent(t *testing.T) {
	t.Parallel()
	// No rate limit: the messages piled up while the node was frozen
	// come at once, and only the freeze may refuse them.
	cfg := testConfig(func(c *server.Config) { c.ResumeGrace, c.MessageRate = longGrace, 0 })
	tc := &testCluster{t: t, nats: natstest.Start(t), prefix: "test", cfg: cfg, ccfg: testClusterConfig(nil)}
	var frozen *frozenLog
	n1 := tc.startWrappedNode("n1", func(l server.Log) server.Log {
		frozen = newFrozenLog(l)
		return frozen
	})
	t.Cleanup(frozen.thaw) // before the node stops, if the test failed frozen
	n2 := tc.startNode("n2")
	alice := join(t, n1, "alice")
	bob := join(t, n2, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	lastSeq := alice.lastSeq

	frozen.freeze()
	// More than a pipeline's worth (16), so that some wait to be read,
	// and a channel join after the first 16, which waits for its answer.
	const n = 40
	for i := range n {
		if i == 16 {
			alice.send(t, joinChannelReq("room", "j1"))
		}
		alice.say(t, fmt.Sprint("while frozen ", i), fmt.Sprint("m", i))
	}
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	// Awake: alice's stream appends a pipeline's worth of her messages and
	// the join, all after the point where the log gave her node up,
	// before the node applies that point.
	frozen.thawAppends()
	for len(frozen.requests()) < 17 {
		select {
		case <-frozen.appended:
		case <-time.After(waitTimeout):
			t.Fatalf("alice's node appended %q of her requests once awake; want 16 messages and a join", frozen.requests())
		}
	}
	frozen.thawApplies()

	evs, st := alice.drainToEnd(t, codes.Unavailable)
	answered := map[string]string{}
	for _, ev := range evs {
		switch {
		case ev.GetMessage().GetSender() == "alice":
			answered[ev.GetMessage().GetClientId()] = "echoed"
		case ev.GetRejected() != nil:
			r := ev.GetRejected()
			answered[r.GetClientId()] = "refused"
			if codes.Code(r.GetCode()) != codes.Unavailable || !strings.Contains(r.GetReason(), "send it again") {
				t.Errorf("alice's %s was rejected %v %q; want UNAVAILABLE, saying to send it again", r.GetClientId(), codes.Code(r.GetCode()), r.GetReason())
			}
		default:
			t.Errorf("alice got %v after her node woke; want only answers to her messages", ev)
		}
	}
	// The join's answer, a refusal, may come after the stream's end: the
	// stream's reader gives it, not the log. The end says what that means.
	if a := answered["j1"]; a != "" && a != "refused" {
		t.Errorf("alice's channel join was %s after her node woke; want it refused, or not answered", a)
	}
	delete(answered, "j1")
	var appended, dropped []string
	for _, req := range frozen.requests() {
		if strings.HasPrefix(req, "#") {
			continue
		}
		appended = append(appended, req)
		if answered[req] == "" {
			dropped = append(dropped, req)
		}
	}
	refused := 0
	for _, a := range answered {
		if a == "refused" {
			refused++
		}
	}
	t.Logf("of %d messages sent while frozen: %d appended once awake, %d refused, %d echoed, %d unanswered at the end (%d of them appended: dropped)",
		n, len(appended), refused, len(answered)-refused, n-len(answered), len(dropped))
	if len(dropped) > 0 {
		t.Errorf("alice's messages %v were taken by the log once her node woke, and dropped with nobody told; want each refused", dropped)
	}
	if !strings.Contains(st.Message(), "not carried out") {
		t.Errorf("alice's stream ended with %q; want it to say that what was not answered was not carried out", st.Message())
	}

	back := resumeStream(t, n1, alice, lastSeq)
	expectRecovery(t, back, alice.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	back.say(t, "back", "a1")
	expectMessage(t, "alice", back.next(t), "alice", "back", "a1")
	// Nothing alice sent while frozen reached bob (nothing was echoed):
	// after her leave, he hears her come back, then her message.
	expectJoined(t, "bob", bob.next(t), "alice", true)
	expectChannelJoined(t, "bob", bob.next(t), "general", "alice")
	expectMessage(t, "bob", bob.next(t), "alice", "back", "a1")
}
