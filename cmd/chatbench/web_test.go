package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// runReport runs chatbench with args and returns its JSON report, failing
// the test if the run fails.
func runReport(t *testing.T, args ...string) *report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--idle-wait", "0s", "--progress", "0")
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, &stdout)
	}
	t.Logf("report:\n%s", &stdout)
	return &rep
}

// TestGRPCWeb checks the page's path: members (senders too) join through
// the gateway of a chatd that chatbench starts with an HTTP port, and
// every one receives every message in order.
func TestGRPCWeb(t *testing.T) {
	// Every websocket and the library's goroutine behind it must be gone
	// once the run is: a leak here is one per member.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rep := runReport(t, "--chatd", chatdBin, "--transport", "grpc-web",
		"--members", "30", "--senders", "2", "--rate", "40", "--duration", "1s", "--baseline=false")
	if !rep.OK || rep.Transport != "grpc-web" || !strings.Contains(rep.Chatd.Server, "via grpc-web 127.0.0.1:") {
		t.Errorf("ok %v, transport %q, server %q; want true, grpc-web, through the gateway on loopback", rep.OK, rep.Transport, rep.Chatd.Server)
	}
	checkResult(t, rep.Chatd, 30)
	if c := rep.Chatd.ServerCPUPerMillion; c == nil || *c <= 0 {
		t.Errorf("server CPU per million deliveries %v, want a figure", c)
	}
}

// TestGRPCWebAttached checks grpc-web against a chatd chatbench did not
// start: the probe goes to --server, the members to --web-server. A
// --web-server that is chatd's gRPC port, not its HTTP one, fails the run.
func TestGRPCWebAttached(t *testing.T) {
	p, err := startChatd(t.Context(), chatdBin, 20, []string{"--http-addr=127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	})
	if p.http == "" || p.http == p.addr {
		t.Fatalf("chatd's HTTP address %q (gRPC on %s): want one of its own", p.http, p.addr)
	}
	rep := runReport(t, "--server", p.addr, "--server-pid", strconv.Itoa(p.pid), "--transport", "grpc-web", "--web-server", p.http,
		"--members", "10", "--senders", "1", "--rate", "20", "--duration", "500ms", "--baseline=false")
	checkResult(t, rep.Chatd, 10)

	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"--server", p.addr, "--transport", "grpc-web", "--web-server", p.addr,
		"--members", "2", "--senders", "1", "--rate", "20", "--duration", "200ms", "--baseline=false",
		"--idle-wait", "0s", "--progress", "0", "--join-timeout", "5s"}, &stdout, &stderr)
	if err == nil {
		t.Errorf("grpc-web members on chatd's gRPC port: run succeeded, want it to fail\n%s", &stdout)
	}
}

// TestChannels checks --channels over both transports: each message
// reaches its channel's members only, every one of them, in order, and
// the deliveries are counted per channel.
func TestChannels(t *testing.T) {
	for _, tr := range []string{"grpc", "grpc-web"} {
		t.Run(tr, func(t *testing.T) {
			// 30 members in 3 channels of 10; 6 senders, 2 per channel.
			rep := runReport(t, "--chatd", chatdBin, "--transport", tr, "--channels", "3",
				"--members", "30", "--senders", "6", "--rate", "60", "--duration", "1s")
			if !rep.OK || rep.Channels != 3 || rep.Baseline != nil {
				t.Errorf("ok %v, channels %d, baseline %v; want true, 3, none", rep.OK, rep.Channels, rep.Baseline)
			}
			checkResultReach(t, rep.Chatd, 30, 10)
		})
	}
}

// TestMisdeliveryIsAProblem checks the per-channel accounting: a member
// expects its own channel's senders only, and a message from another
// channel fails the run.
func TestMisdeliveryIsAProblem(t *testing.T) {
	t.Parallel()
	// Two channels: members 0 and 2 in c0, 1 and 3 in c1; members 0 and
	// 1 send, two messages each.
	ms := make([]*member, 4)
	for i := range ms {
		ms[i] = newMember(i, 2, 2)
	}
	for _, m := range ms[:2] {
		m.snd = &sender{}
		m.snd.sent.Store(2)
	}
	for _, m := range ms {
		for n := range uint64(2) {
			onMessage(m, string(appendText(nil, m.group, n, now())))
		}
	}
	onMessage(ms[2], string(appendText(nil, 1, 2, now()))) // c1's message in c0

	var r result
	r.SendS = 1
	r.account(ms, 2)
	if r.Deliveries != 8 || r.ExpectedDeliveries != 8 || r.Lost != 0 || r.Misdelivered != 1 {
		t.Errorf("deliveries %d, expected %d, lost %d, to another channel %d; want 8, 8, 0, 1", r.Deliveries, r.ExpectedDeliveries, r.Lost, r.Misdelivered)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "another channel") {
		t.Errorf("problems %q, want one about another channel", r.Problems)
	}
}
