package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// perNodeLimit is a --max-sessions-per-ip that the cluster tests give each
// node: more than a third of the members, fewer than them all. chatd counts
// it on each node, so a run passes only if the members really are spread
// over the nodes.
const perNodeLimit = "--max-sessions-per-ip=12"

// runJSON runs chatbench with args and returns its JSON report.
func runJSON(t *testing.T, args ...string) (*report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, &stdout)
	}
	t.Logf("report:\n%s", &stdout)
	return &rep, stdout.String()
}

// TestCluster runs chatbench against a cluster that it starts itself:
// nats-server (go.mod's, found with `go tool -n`) and three chatd nodes,
// each of which refuses more than 12 sessions from one address, so that
// the 30 members must be spread over the three. Every member must get
// every message and every join, whatever node it is on; the report gives
// each node's figures and nats-server's; and everything is stopped.
func TestCluster(t *testing.T) {
	rep, text := runJSON(t, "--chatd", chatdBin, "--nodes", "3", "--chatd-arg="+perNodeLimit,
		"--members", "30", "--senders", "3", "--window", "8", "--duration", "1s",
		"--idle-wait", "200ms", "--baseline=false", "--progress", "0")
	if !rep.OK {
		t.Errorf("report not OK")
	}
	c := rep.Chatd
	checkResult(t, c, 30)
	if c.Server != "chatd (3 nodes)" || c.ServerPID != 0 {
		t.Errorf("server %q, pid %d; want chatd (3 nodes) and no one pid", c.Server, c.ServerPID)
	}
	checkNodes(t, c, nil)
	if c.NATS == nil {
		t.Fatal("no nats-server figures, though chatbench started it")
	}
	n := c.NATS
	if !strings.HasPrefix(n.URL, "nats://127.0.0.1:") || n.PID <= 0 {
		t.Errorf("nats-server at %q, pid %d", n.URL, n.PID)
	}
	if n.CPUS == nil || *n.CPUS <= 0 || n.CPUPerMillion == nil || *n.CPUPerMillion <= 0 || n.RSSJoinedMiB == nil || *n.RSSJoinedMiB <= 0 {
		t.Errorf("nats-server CPU %v, per million %v, RSS %v; want positive figures", n.CPUS, n.CPUPerMillion, n.RSSJoinedMiB)
	}
	for _, want := range []string{"chatd (3 nodes), node by node", "nats-server  nats://127.0.0.1:"} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report does not say %q", want)
		}
	}

	// Stopped, and waited for: no process is left with those pids.
	pids := []int{n.PID}
	for _, node := range c.Nodes {
		pids = append(pids, node.PID)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after the run (kill 0: %v)", pid, err)
		}
	}
}

// TestAttachCluster runs chatbench against the nodes of a running cluster
// listed in --server, with their pids in --server-pid in the same order,
// members sharing two connections per node; then with a node that is not
// there, which fails the run before it starts.
func TestAttachCluster(t *testing.T) {
	c, err := startCluster(t.Context(), &config{chatdPath: chatdBin, nodes: 3, members: 30, devices: 1, chatdArgs: []string{perNodeLimit}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	})
	addrs := c.addrs()
	var pids []string
	for _, p := range c.nodes {
		pids = append(pids, strconv.Itoa(p.pid))
	}
	rep, _ := runJSON(t, "--server", strings.Join(addrs, ","), "--server-pid", strings.Join(pids, ","),
		"--members", "30", "--senders", "3", "--window", "4", "--duration", "500ms", "--conns", "2",
		"--idle-wait", "0s", "--baseline=false", "--progress", "0")
	r := rep.Chatd
	checkResult(t, r, 30)
	if want := "chatd " + strings.Join(addrs, ","); r.Server != want {
		t.Errorf("server %q, want %q", r.Server, want)
	}
	checkNodes(t, r, c)
	if r.NATS != nil {
		t.Errorf("nats-server figures %+v for a cluster chatbench did not start", r.NATS)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := lis.Addr().String()
	lis.Close()
	runPrompt(t, []string{"chatd at " + gone + ": cannot reach chatd at " + gone + ": connection refused"},
		"--server", addrs[0]+","+gone, "--members", "4", "--senders", "1")
}

// checkNodes checks a cluster's per-node figures: ten members each, one
// sender each, a third of the deliveries each, the pids of the nodes (of
// c, if given, in order), CPU and memory read for each, adding up to the
// totals.
func checkNodes(t *testing.T, r *result, c *cluster) {
	t.Helper()
	if len(r.Nodes) != 3 {
		t.Fatalf("%d nodes in the report, want 3", len(r.Nodes))
	}
	var cpu, rss float64
	pids := map[int]bool{}
	for k, n := range r.Nodes {
		if n.Members != 10 || n.Senders != 1 || n.Deliveries != r.Sent*10 {
			t.Errorf("node %s: %d members, %d senders, %d deliveries; want 10, 1, %d", n.Name, n.Members, n.Senders, n.Deliveries, r.Sent*10)
		}
		if c != nil && (n.Addr != c.nodes[k].addr || n.PID != c.nodes[k].pid) {
			t.Errorf("node %d: %s, pid %d; want %s, pid %d", k, n.Addr, n.PID, c.nodes[k].addr, c.nodes[k].pid)
		}
		if n.PID <= 0 || pids[n.PID] {
			t.Errorf("node %s: pid %d, want its own", n.Name, n.PID)
		}
		pids[n.PID] = true
		for name, v := range map[string]*float64{"cpu_s": n.CPUS, "cpu_s_per_million_deliveries": n.CPUPerMillion, "rss_joined_mib": n.RSSJoinedMiB, "mem_per_session_kib": n.MemPerSessionKiB} {
			if v == nil || *v <= 0 {
				t.Errorf("node %s: %s = %v, want a positive figure", n.Name, name, v)
			}
		}
		if n.CPUS != nil && n.RSSJoinedMiB != nil {
			cpu += *n.CPUS
			rss += *n.RSSJoinedMiB
		}
	}
	if r.ServerCPUS == nil || math.Abs(*r.ServerCPUS-cpu) > 1e-9 || r.ServerRSSJoinedMiB == nil || math.Abs(*r.ServerRSSJoinedMiB-rss) > 1e-9 {
		t.Errorf("server CPU %v, RSS %v; want the nodes' totals, %g and %g", r.ServerCPUS, r.ServerRSSJoinedMiB, cpu, rss)
	}
	if r.ServerCPUPerMillion == nil || math.Abs(*r.ServerCPUPerMillion-cpu/(float64(r.Deliveries)/1e6)) > 1e-6 {
		t.Errorf("server CPU per million %v, want the nodes' CPU over all deliveries", r.ServerCPUPerMillion)
	}
}
