package server_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/natstest"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metricValue is the value of the series of name with labels (name=value
// pairs) in reg: a counter's or gauge's value, or a histogram's count. It
// fails the test if there is no such series.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
	series:
		for _, m := range fam.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == k && lp.GetValue() == v
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// TestClusterMetrics checks that each node of a cluster counts what its
// own streams did, once, though every node applies every command, and
// that every node shows the whole chat's state and its own part in the
// cluster.
func TestClusterMetrics(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	cfg, ccfg := testConfig(nil), testClusterConfig(nil)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var nodes []*testServer
	for i, reg := range regs {
		logw := &testLogWriter{t: t}
		t.Cleanup(logw.stop)
		c := ccfg
		c.Name = fmt.Sprintf("n%d", i+1)
		node := servertest.StartNode(t, cfg, c, nats.URL(), "test", slog.New(slog.NewTextHandler(logw, nil)), server.WithMetrics(reg))
		ts := &testServer{srv: node.Srv, addr: node.Addr, node: node}
		ts.admin = dial(t, ts.addr)
		nodes = append(nodes, ts)
	}
	n1, n2 := regs[0], regs[1]
	value := func(reg *prometheus.Registry, name string, labels ...string) float64 {
		t.Helper()
		return metricValue(t, reg, name, labels...)
	}
	for i, reg := range regs {
		waitFor(t, fmt.Sprintf("node %d to hear both nodes", i+1), func() bool { return value(reg, "chatd_cluster_nodes") == 2 })
		if v, c := value(reg, "chatd_cluster_serving"), value(reg, "chatd_cluster_nats_connected"); v != 1 || c != 1 {
			t.Errorf("node %d: chatd_cluster_serving %v, chatd_cluster_nats_connected %v; want 1 and 1", i+1, v, c)
		}
	}

	alice := join(t, nodes[0], "alice")
	bob := join(t, nodes[1], "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.say(t, "hello", "a1")
	expectMessage(t, "alice", alice.next(t), "alice", "hello", "a1")
	expectMessage(t, "bob", bob.next(t), "alice", "hello", "a1")

	for i, want := range []struct{ joins, messages, lags float64 }{{1, 1, 2}, {1, 0, 1}} {
		reg := regs[i]
		// Counted by the node whose stream asked, not by every node
		// that applied the command.
		if v := value(reg, "chatd_joins_total", "result=new"); v != want.joins {
			t.Errorf("node %d: chatd_joins_total{result=new} %v; want %v", i+1, v, want.joins)
		}
		// Counted once the hub has taken the message, which may be just
		// after the echo is out.
		waitFor(t, fmt.Sprintf("node %d to count %v messages", i+1, want.messages), func() bool {
			return value(reg, "chatd_messages_total", "kind=channel") == want.messages
		})
		// Its own commands: the joins, and alice's message on node 1.
		if v := value(reg, "chatd_cluster_apply_lag_seconds"); v != want.lags {
			t.Errorf("node %d: chatd_cluster_apply_lag_seconds has %v samples; want %v", i+1, v, want.lags)
		}
		if v := value(reg, "chatd_deliveries_total"); v == 0 {
			t.Errorf("node %d: no deliveries counted", i+1)
		}
		// Applied by every node; observed as the lock is released, just
		// after the message is queued.
		waitFor(t, fmt.Sprintf("node %d to time its apply of the send", i+1), func() bool {
			return value(reg, "chatd_hub_lock_held_seconds", "command=send") == 1
		})
		// The whole chat, on every node.
		if v := value(reg, "chatd_chat_sessions", "state=online"); v != 2 {
			t.Errorf("node %d: chatd_chat_sessions{state=online} %v; want 2", i+1, v)
		}
		if v := value(reg, "chatd_streams", "state=joined"); v != 1 {
			t.Errorf("node %d: chatd_streams{state=joined} %v; want 1", i+1, v)
		}
	}
	waitFor(t, "both nodes to show the same log position", func() bool {
		p1, p2 := value(n1, "chatd_cluster_log_position"), value(n2, "chatd_cluster_log_position")
		return p1 > 0 && p1 == p2
	})

	// Node 2 stops: node 1 holds bob for a resume, and no longer counts
	// node 2; node 2 counted its stream's end.
	nodes[1].node.Stop(t)
	bob.expectEnd(t, codes.Unavailable)
	if v := value(n2, "chatd_leaves_total", "reason=server_shutdown"); v != 1 {
		t.Errorf("node 2: chatd_leaves_total{reason=server_shutdown} %v; want 1", v)
	}
	waitFor(t, "node 1 to hold bob and forget node 2", func() bool {
		return value(n1, "chatd_chat_sessions", "state=held") == 1 && value(n1, "chatd_chat_sessions", "state=online") == 1 &&
			value(n1, "chatd_cluster_nodes") == 1
	})
	bob2 := resumeStream(t, nodes[0], bob, bob.lastSeq)
	if r := bob2.welcome.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("bob's resume on node 1: %v; want RECOVERY_COMPLETE", r)
	}
	if h, o := value(n1, "chatd_chat_sessions", "state=held"), value(n1, "chatd_chat_sessions", "state=online"); h != 0 || o != 2 {
		t.Errorf("after bob's resume: node 1 has %v sessions held and %v online; want 0 and 2", h, o)
	}
	if v := value(n1, "chatd_resumes_total", "outcome=complete"); v != 1 {
		t.Errorf("node 1: chatd_resumes_total{outcome=complete} %v; want 1", v)
	}
}
