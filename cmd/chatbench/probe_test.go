package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// slowRun is a --join-timeout (and --duration) that the tests of what
// chatbench checks before a run set: a chatbench that found out only by
// running would wait it out, and the tests would catch it with prompt.
const slowRun = "60s"

// prompt bounds a check before the run: generous for a busy machine that
// starts a chatd, and still far below slowRun.
const prompt = 20 * time.Second

// runPrompt runs chatbench with args, and checks that it fails promptly,
// before any report, with an error that says each of want.
func runPrompt(t *testing.T, want []string, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(t.Context(), append(args, "--join-timeout", slowRun, "--duration", slowRun, "--baseline=false", "--progress", "0"), &stdout, &stderr)
	elapsed := time.Since(start)
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("run = %v, want an error saying %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "\\n") {
		t.Errorf("error %q, want one line", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q, want no report: the run should not have started", &stdout)
	}
	if elapsed > prompt {
		t.Errorf("failed after %s, want well within --join-timeout %s", elapsed, slowRun)
	}
}

// With nothing at --server, chatbench says so at once, rather than show
// "joined 0/100" until --join-timeout and then a balancer's error.
func TestUnreachableServerFailsAtOnce(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	runPrompt(t, []string{"cannot reach chatd at " + addr + ": connection refused (is it running?)"}, "--server", addr)
}

// A chatd with its rate limit on would refuse the senders' messages:
// chatbench finds out before the run, and says what to do, for a chatd it
// starts with a --chatd-arg that limits it, and for one at --server.
func TestRateLimitIsCheckedFirst(t *testing.T) {
	t.Parallel()
	runPrompt(t, []string{`chatd limits how fast a session may send: of 50 messages sent at once, it refused one with "too many requests: at most 5 per second; wait a moment and try again"; chatbench starts chatd with --message-rate 0: drop the --chatd-arg that limits it`},
		"--chatd", chatdBin, "--chatd-arg=--message-rate=5", "--members", "5", "--senders", "1")

	// One session per address: a probe that did not log out after the
	// refusal would be held for a resume, and the second run's probe
	// refused for it.
	p, err := startChatd(t.Context(), chatdBin, 5, []string{"--message-rate=5", "--max-sessions-per-ip=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	}()
	for range 2 {
		runPrompt(t, []string{"the senders send far faster than a person: run chatd with --message-rate 0"},
			"--server", p.addr, "--members", "5", "--senders", "1")
	}
}

// chatd's limits per client address refuse a run's joins past a point,
// since every member comes from this machine: chatbench says which flags
// of chatd's lift them, at the first refusal.
func TestPerAddressLimitsAreExplained(t *testing.T) {
	t.Parallel()
	const advice = "every member connects from this machine; run chatd with " + perAddressFlags
	for _, tt := range []struct {
		limit []string
		want  string
	}{
		// Joins are refused with RESOURCE_EXHAUSTED...
		{[]string{"--join-rate-per-ip=0.1", "--join-burst-per-ip=5"}, `chatd refused it ("too many joins from your address`},
		{[]string{"--max-sessions-per-ip=5"}, `chatd refused it ("too many sessions from your address`},
		// ...and connections past the limit are closed at once, which gRPC
		// alone would retry until --join-timeout.
		{[]string{"--max-conns-per-ip=5"}, "closed the connection at once: it does past its --max-conns-per-ip"},
	} {
		t.Run(tt.limit[0], func(t *testing.T) {
			t.Parallel()
			p, err := startChatd(t.Context(), chatdBin, 20, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.stop(); err != nil {
					t.Error(err)
				}
			}()
			runPrompt(t, []string{tt.want, advice}, "--server", p.addr, "--members", "20", "--senders", "1")
		})
	}
}
