package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// chatdBin is the chatd binary TestMain builds for the smoke test.
var chatdBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chatbench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// chatd is built without -race even under -race: the smoke test checks
	// chatbench, and a race-enabled chatd would only make it slow (e2e
	// runs chatd under the race detector).
	build := exec.Command("go", "build", "-o", dir, "github.com/chatd/chatd/cmd/chatd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build chatd: %v\n%s", err, out)
		return 1
	}
	chatdBin = filepath.Join(dir, "chatd")
	return m.Run()
}

// TestSmoke runs a small benchmark against a real chatd and checks that
// the report holds together.
func TestSmoke(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{
		"--chatd", chatdBin,
		"--members", "50", "--senders", "2", "--window", "8", "--duration", "1s",
		"--idle-wait", "200ms", "--progress", "200ms",
		// The raw baseline's members run in this (race-enabled) test
		// process: on a busy machine they fall behind a 1,024-frame
		// queue, which says nothing about the report.
		"--baseline-queue-size", "1048576",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, &stdout)
	}
	t.Logf("report:\n%s", &stdout)
	if !rep.OK || rep.Mode != "saturated" || rep.Members != 50 || rep.Senders != 2 {
		t.Errorf("ok %v, mode %q, members %d, senders %d; want true, saturated, 50, 2", rep.OK, rep.Mode, rep.Members, rep.Senders)
	}
	if !strings.Contains(stdout.String(), "deliveries/s") {
		t.Error("no text summary before the JSON line")
	}
	if !strings.Contains(stderr.String(), "chatd: ") || !strings.Contains(stderr.String(), "joined 50/50") {
		t.Errorf("no progress line on stderr:\n%s", &stderr)
	}

	if rep.Baseline == nil {
		t.Fatal("no baseline in the report")
	}
	if rep.Ratio == nil || *rep.Ratio <= 0 {
		t.Errorf("chatd/baseline ratio %v, want a positive number", rep.Ratio)
	}
	for _, r := range []*result{rep.Chatd, rep.Baseline} {
		if r == nil {
			t.Fatal("a result is missing")
		}
		t.Run(r.Server, func(t *testing.T) {
			checkResult(t, r, 50)
		})
	}

	c := rep.Chatd
	for name, v := range map[string]*float64{
		"chatbench_cpu_s":                     c.ChatbenchCPUS,
		"server_cpu_s":                        c.ServerCPUS,
		"server_cpu_s_per_million_deliveries": c.ServerCPUPerMillion,
		"server_rss_joined_mib":               c.ServerRSSJoinedMiB,
		"server_mem_per_session_kib":          c.ServerMemPerSessionKiB,
	} {
		if v == nil || *v <= 0 {
			t.Errorf("chatd's %s = %v, want a positive figure", name, v)
		}
	}
	if c.ServerPID <= 0 {
		t.Errorf("chatd's pid = %d", c.ServerPID)
	}
	if rep.Baseline.ServerCPUS != nil || rep.Baseline.ServerMemPerSessionKiB != nil {
		t.Error("the baseline reports server CPU or memory it cannot measure apart from chatbench")
	}
}

func checkResult(t *testing.T, r *result, members int) {
	t.Helper()
	checkResultReach(t, r, members, members)
}

// checkResultReach is checkResult for a run in which each message
// reaches reach of the members (its channel's, with --channels).
func checkResultReach(t *testing.T, r *result, members, reach int) {
	t.Helper()
	if r.Joined != members || r.JoinS <= 0 || r.SettleS < r.JoinS {
		t.Errorf("joined %d in %gs, settled in %gs; want %d, 0 < join <= settle", r.Joined, r.JoinS, r.SettleS, members)
	}
	if r.Sent == 0 {
		t.Fatal("nothing sent")
	}
	if want := r.Sent * uint64(reach); r.Deliveries != want || r.ExpectedDeliveries != want {
		t.Errorf("deliveries %d, expected %d; want sent × members reached = %d × %d = %d", r.Deliveries, r.ExpectedDeliveries, r.Sent, reach, want)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.SeqGaps != 0 || r.Misdelivered != 0 || r.Rejected != 0 || r.SlowDropped != 0 || r.Errors != 0 || len(r.Problems) > 0 {
		t.Errorf("lost %d, duplicated %d, seq gaps %d, to another channel %d, rejected %d, slow %d, errors %d, problems %q; want none",
			r.Lost, r.Duplicated, r.SeqGaps, r.Misdelivered, r.Rejected, r.SlowDropped, r.Errors, r.Problems)
	}
	if r.DeliveriesPerS == nil || *r.DeliveriesPerS <= 0 || r.SendS <= 0 {
		t.Errorf("deliveries/s %v over %gs, want positive", r.DeliveriesPerS, r.SendS)
	}
	l := r.LatencyMS
	if l == nil {
		t.Fatal("no latency")
	}
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency %+v: want 0 < p50 <= p99 <= p99.9 <= max", *l)
	}
	// /proc counts CPU time in clock ticks (10 ms): a light half-second
	// run may take less than one. TestSmoke's saturated run checks that
	// it is more.
	if r.ChatbenchCPUS == nil || *r.ChatbenchCPUS < 0 {
		t.Errorf("chatbench CPU %v, want a reading", r.ChatbenchCPUS)
	}
}

// TestAttachWithoutPID checks that a server's CPU and memory are reported as
// unavailable, not as zero, when chatbench does not know its pid, and that
// a rate-mode join-and-send works against a chatd it did not start.
func TestAttachWithoutPID(t *testing.T) {
	p, err := startChatd(t.Context(), chatdBin, 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	}()
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{
		"--server", p.addr, "--members", "20", "--senders", "2", "--rate", "200", "--duration", "500ms",
		"--idle-wait", "0s", "--baseline=false", "--json-only", "--progress", "0",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr with --progress 0: %q", &stderr)
	}
	var rep report
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &rep); err != nil {
		t.Fatalf("--json-only output is not one JSON line: %v\n%s", err, &stdout)
	}
	if rep.Baseline != nil || rep.Mode != "rate" || rep.Rate == nil || *rep.Rate != 200 {
		t.Errorf("baseline %v, mode %q, rate %v; want none, rate, 200", rep.Baseline, rep.Mode, rep.Rate)
	}
	checkResult(t, rep.Chatd, 20)
	// 200 messages/s for 0.5s: about 100, however the timers fall.
	if s := rep.Chatd.Sent; s < 90 || s > 101 {
		t.Errorf("sent %d messages at 200/s for 500ms, want about 100", s)
	}
	c := rep.Chatd
	if c.ServerCPUS != nil || c.ServerCPUPerMillion != nil || c.ServerMemPerSessionKiB != nil || c.ServerRSSJoinedMiB != nil {
		t.Errorf("server figures without a pid: cpu %v, per million %v, per session %v, rss %v; want all null",
			c.ServerCPUS, c.ServerCPUPerMillion, c.ServerMemPerSessionKiB, c.ServerRSSJoinedMiB)
	}
	// One note says why, once.
	if want := []string{"server memory and server CPU: server pid unknown (pass --server-pid)"}; !slices.Equal(c.Unavailable, want) {
		t.Errorf("unavailable %q, want %q", c.Unavailable, want)
	}
}

// TestRateLimitIsReported checks that a chatd whose rate limit the probe
// cannot see (a burst larger than the probe's) is reported as refusing
// messages once the run meets it, and that chatbench then fails: the limit
// must be turned off, not silently bypassed.
func TestRateLimitIsReported(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{
		"--chatd", chatdBin, "--chatd-arg=--message-rate=5", fmt.Sprintf("--chatd-arg=--message-burst=%d", 2*probeMessages),
		"--members", "5", "--senders", "1", "--window", "4", "--duration", "2s",
		"--idle-wait", "0s", "--baseline=false", "--progress", "0",
	}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--message-rate 0") {
		t.Fatalf("run = %v, want an error about refused messages\nstdout:\n%s", err, &stdout)
	}
	if !strings.Contains(stdout.String(), "PROBLEM:") {
		t.Errorf("the text report does not show the problem:\n%s", &stdout)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "say which chatd to measure"},
		{[]string{"--chatd", "x", "--server", "y:1"}, "exclude each other"},
		{[]string{"--chatd", "x", "--server-pid", "12"}, "--server-pid goes with --server"},
		{[]string{"--server", "y:1", "--chatd-arg", "--queue-size=1"}, "--chatd-arg goes with --chatd"},
		{[]string{"--server", "y:1", "--members", "0"}, "--members must be at least 1"},
		{[]string{"--server", "y:1", "--devices", "0"}, "--devices must be at least 1"},
		{[]string{"--server", "y:1", "--members", "3", "--senders", "4"}, "--senders must be between 0 and --members (3)"},
		{[]string{"--server", "y:1", "--window", "0"}, "--window must be at least 1"},
		{[]string{"--server", "y:1", "--rate", "-1"}, "--rate must be 0"},
		{[]string{"--server", "y:1", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"--server", "y:1", "--join-concurrency", "0"}, "--join-concurrency"},
		{[]string{"--server", "y:1", "--conns", "-1"}, "--conns"},
		{[]string{"--server", "y:1", "--drain-timeout", "0s"}, "--drain-timeout must be positive"},
		{[]string{"--server", "y:1", "--members", "x"}, "invalid value"},
		{[]string{"--server", "y:1", "--bogus"}, "flag provided but not defined"},
		{[]string{"--server", "y:1", "extra"}, `unexpected argument "extra"`},
		{[]string{"--server", "localhost"}, `bad --server "localhost": it has no port; want host:port, e.g. --server localhost:50051`},
		{[]string{"--server", "http://localhost:50051"}, `bad --server "http://localhost:50051": it has a scheme (http://)`},
		// --server-pid "$(pidof chatd)" with two chatd running, or none;
		// unquoted, the second pid is an argument.
		{[]string{"--server", "y:1", "--server-pid", "123 456"}, `invalid value "123 456" for flag -server-pid: 2 pids, one per chatd running: give the one listening at --server`},
		{[]string{"--server", "y:1", "--server-pid", "123", "456"}, `unexpected argument "456": --server-pid takes one pid`},
		{[]string{"--server", "y:1", "--server-pid", ""}, `invalid value "" for flag -server-pid: no pid (is chatd running?`},
		{[]string{"--server", "y:1", "--server-pid", "-3"}, `invalid value "-3" for flag -server-pid: not a pid`},
		// A cluster's nodes, and their pids in the same order.
		{[]string{"--server", "a:1,,b:1"}, `bad --server "": it is empty`},
		{[]string{"--server", "a:1,b:1", "--server", "a:1"}, "--server lists a:1 twice"},
		{[]string{"--server", "a:1,b:1", "--server-pid", "7"}, "--server-pid has 1 pids for 2 --server addresses: give one per address, in the same order"},
		{[]string{"--server", "a:1", "--server-pid", "7,8"}, "--server-pid has 2 pids for 1 --server addresses"},
		{[]string{"--server", "a:1,b:1", "--server-pid", "7,7"}, "--server-pid lists 7 twice"},
		{[]string{"--server", "a:1,b:1", "--server-pid", "7,"}, `invalid value "7," for flag -server-pid: an empty pid`},
		{[]string{"--server", "a:1,b:1", "--server-pid", "7,x"}, `invalid value "7,x" for flag -server-pid: not a pid`},
		{[]string{"--server", "a:1,b:1", "--server-pid", "7 8"}, "or with several --server addresses their pids comma-separated in the same order"},
		{[]string{"--server", "y:1", "--nodes", "3"}, "--nodes goes with --chatd (to measure a cluster that is already running, list its nodes in --server)"},
		{[]string{"--chatd", "x", "--nodes", "-1"}, "--nodes must be 0 (one chatd, no NATS) or positive, got -1"},
		{[]string{"--chatd", "x", "--nats-server", "y"}, "--nats-server goes with --nodes"},
		// A rolling restart: of a node chatbench started, with another to
		// move to, during a send phase.
		{[]string{"--chatd", "x", "--restart-node", "1"}, "--restart-node needs --chatd and --nodes 2 or more"},
		{[]string{"--chatd", "x", "--nodes", "1", "--restart-node", "1"}, "--restart-node needs --chatd and --nodes 2 or more"},
		{[]string{"--server", "a:1,b:1", "--restart-node", "1"}, "--restart-node needs --chatd and --nodes 2 or more"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-node", "4"}, "--restart-node 4: there are only 3 nodes (n1 to n3)"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-node", "-1"}, "--restart-node must be a node's number, from 1, or 0 for none; got -1"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-node", "2", "--senders", "0"}, "--restart-node restarts a node during the send phase: give --senders 1 or more"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-node", "2", "--duration", "2s", "--restart-at", "2s"}, "--restart-at must be at least 0 and less than --duration (2s), got 2s"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-at", "1s"}, "--restart-at goes with --restart-node"},
		{[]string{"--chatd", "x", "--nodes", "3", "--restart-node", "2", "--baseline"}, "--baseline goes without --restart-node"},
		// The page's path (grpc-web through the gateway) and channels.
		{[]string{"--chatd", "x", "--transport", "websocket"}, `--transport must be grpc or grpc-web, got "websocket"`},
		{[]string{"--server", "y:1", "--transport", "grpc-web"}, "--transport grpc-web with --server needs --web-server"},
		{[]string{"--chatd", "x", "--transport", "grpc-web", "--web-server", "y:2"}, "--web-server goes with --server"},
		{[]string{"--server", "y:1", "--web-server", "y:2"}, "--web-server goes with --transport grpc-web"},
		{[]string{"--server", "y:1", "--transport", "grpc-web", "--web-server", "y"}, `bad --web-server "y"`},
		{[]string{"--chatd", "x", "--nodes", "2", "--transport", "grpc-web"}, "--transport grpc-web measures one chatd"},
		{[]string{"--chatd", "x", "--transport", "grpc-web", "--client-bdp"}, "--conns, --client-bdp and --ca-file go with --transport grpc"},
		{[]string{"--chatd", "x", "--channels", "-1"}, "--channels must be 0"},
		{[]string{"--chatd", "x", "--channels", "3", "--senders", "4"}, "--senders (4) must be a multiple of --channels (3)"},
		{[]string{"--chatd", "x", "--channels", "3", "--members", "2", "--senders", "0"}, "fewer --members (2) than channels"},
		{[]string{"--chatd", "x", "--channels", "2", "--senders", "2", "--baseline"}, "--baseline goes without --channels"},
		{[]string{"--chatd", "x", "--nodes", "2", "--channels", "2", "--senders", "2", "--restart-node", "1"}, "--channels goes without --restart-node"},
		// Typing: members that do not send, typing at a pace.
		{[]string{"--chatd", "x", "--members", "5", "--senders", "1", "--typers", "5"}, "--typers must be between 0 and --members less --senders (4), got 5"},
		{[]string{"--chatd", "x", "--typers", "-1"}, "--typers must be between 0"},
		{[]string{"--chatd", "x", "--typing-every", "1s"}, "--typing-every goes with --typers"},
		{[]string{"--chatd", "x", "--typing-pause", "0s"}, "--typing-pause goes with --typers"},
		{[]string{"--chatd", "x", "--typers", "2", "--typing-every", "0s"}, "--typing-every and --typing-for must be positive"},
		{[]string{"--chatd", "x", "--typers", "2", "--typing-pause", "-1s"}, "--typing-pause must be 0 (no pause) or positive"},
		{[]string{"--chatd", "x", "--typers", "2", "--senders", "0", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"--chatd", "x", "--typers", "2", "--baseline"}, "--baseline goes without --typers"},
		{[]string{"--chatd", "x", "--nodes", "3", "--typers", "2", "--restart-node", "2"}, "--typers goes without --restart-node"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want a usage error saying %q", err, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", &stdout)
			}
		})
	}

	// Join only: no sending, so no duration is needed.
	if _, err := parseArgs([]string{"--server", "y:1", "--senders", "0", "--duration", "0s"}, nil); err != nil {
		t.Errorf("join-only run refused: %v", err)
	}

	// A restart comes a third of the way into the send phase unless told,
	// and skips the baseline, which has no node to restart.
	cfg, err := parseArgs([]string{"--chatd", "x", "--nodes", "3", "--restart-node", "3", "--duration", "6s"}, nil)
	if err != nil {
		t.Fatalf("restart run refused: %v", err)
	}
	if cfg.restartNode != 3 || cfg.restartAt != 2*time.Second || cfg.baseline {
		t.Errorf("restart node %d at %s, baseline %v; want 3 at 2s, no baseline", cfg.restartNode, cfg.restartAt, cfg.baseline)
	}
	if cfg, err = parseArgs([]string{"--chatd", "x", "--nodes", "2", "--restart-node", "1", "--restart-at", "0s"}, nil); err != nil {
		t.Errorf("--restart-at 0s refused: %v", err)
	} else if cfg.restartAt != 0 {
		t.Errorf("--restart-at 0s: at %s, want at once", cfg.restartAt)
	}

	// Lists may be comma-separated, repeated, or both.
	cfg, err = parseArgs([]string{"--server", "a:1,b:1", "--server", "c:1", "--server-pid", "7", "--server-pid", "8,9"}, nil)
	if err != nil {
		t.Fatalf("three servers and their pids refused: %v", err)
	}
	if want := []string{"a:1", "b:1", "c:1"}; !slices.Equal(cfg.servers, want) {
		t.Errorf("servers %q, want %q", cfg.servers, want)
	}
	if want := []int{7, 8, 9}; !slices.Equal(cfg.serverPIDs, want) {
		t.Errorf("server pids %v, want %v", cfg.serverPIDs, want)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"--help"}, &stdout, &stdout)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run --help = %v, want flag.ErrHelp", err)
	}
	// The flag package takes a usage's `quoted` word for the argument's
	// name: "-rate second" would be a lie.
	for _, want := range []string{"Usage: chatbench", "-members", "-baseline", "-rate messages/s\n", "-server addresses\n", "-server-pid pids\n", "-nodes N\n", "-nats-server path\n", "-restart-node K\n", "-transport grpc\n", "-web-server address\n", "-channels N\n", "-devices N\n", "-typers N\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help does not mention %q:\n%s", want, &stdout)
		}
	}
}

func TestProcStats(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	// Burn some CPU so that there is some to see.
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU(self) = %s, %v; want a positive time", cpu, err)
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("procRSS(self) = %d, %v; want at least 1 MiB", rss, err)
	}
	if _, err := procCPU(0); !errors.Is(err, errNoPID) {
		t.Errorf("procCPU(0) = %v, want errNoPID", err)
	}
}
