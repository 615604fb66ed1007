package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestart runs a rolling restart of one node of a cluster that
// chatbench starts: node 2 of 3 gets SIGTERM a third of the way into the
// send phase and is started again, its ten members (one of them a sender)
// resume on node 3, and everyone must still get every message once and in
// order, nobody may be seen to leave or come back, and every resume must be
// complete.
func TestRestart(t *testing.T) {
	rep, text := runJSON(t, "--chatd", chatdBin, "--nodes", "3", "--restart-node", "2",
		"--members", "30", "--senders", "3", "--window", "8", "--duration", "2s",
		"--idle-wait", "0s", "--progress", "0")
	if !rep.OK || rep.Baseline != nil {
		t.Errorf("ok %v, baseline %v; want OK and no baseline", rep.OK, rep.Baseline)
	}
	c := rep.Chatd
	if c.Sent == 0 {
		t.Fatal("nothing sent")
	}
	r := c.Restart
	if r == nil {
		t.Fatal("no restart in the report")
	}

	// Every message the chat took reached every member: all that were
	// sent but those the stopping node refused (saying so) and those in
	// flight at the move that never came back.
	if r.Unconfirmed > r.InDoubt {
		t.Errorf("%d messages unconfirmed of %d in doubt", r.Unconfirmed, r.InDoubt)
	}
	if c.Rejected != c.StopRefused {
		t.Errorf("%d messages refused, %d of them by the stopping node; want only those", c.Rejected, c.StopRefused)
	}
	if want := (c.Sent - c.Rejected - r.Unconfirmed) * 30; c.Deliveries != want || c.ExpectedDeliveries != want {
		t.Errorf("deliveries %d, expected %d; want (sent %d - refused %d - unconfirmed %d) × 30 = %d", c.Deliveries, c.ExpectedDeliveries, c.Sent, c.Rejected, r.Unconfirmed, want)
	}
	if c.Lost != 0 || c.Duplicated != 0 || c.SeqGaps != 0 || c.Errors != 0 || c.DrainTimedOut || len(c.Problems) > 0 {
		t.Errorf("lost %d, duplicated %d, seq gaps %d, errors %d, drain timed out %v, problems %q; want none",
			c.Lost, c.Duplicated, c.SeqGaps, c.Errors, c.DrainTimedOut, c.Problems)
	}

	// Node 2's members, and only they, moved, and all came back at once.
	if r.Node != "n2" || r.OnNode != 10 || r.Moved != 10 || r.NotBack != 0 || r.Incomplete != 0 || r.Flapped != 0 || r.Attempts < 10 {
		t.Errorf("node %s: %d members on it, %d moved, %d not back, %d incomplete, %d flaps, %d attempts; want n2: 10, 10, 0, 0, 0, at least 10",
			r.Node, r.OnNode, r.Moved, r.NotBack, r.Incomplete, r.Flapped, r.Attempts)
	}
	if r.Error != "" || r.AtS == nil || *r.AtS < 0.6 || r.ExitS == nil || r.ServingS == nil || *r.ExitS > *r.ServingS {
		t.Errorf("restart error %q, SIGTERM at %v, exit %v, serving %v; want none, at about 0.67 s, 0 < exit <= serving", r.Error, r.AtS, r.ExitS, r.ServingS)
	}
	o := r.OutageMS
	if o == nil || !(o.P50 > 0 && o.P50 <= o.P99 && o.P99 <= o.Max) || r.AllBackS == nil || o.Max > *r.AllBackS*1000 {
		t.Errorf("outage %+v, all back %v; want 0 < p50 <= p99 <= max, max within the time until all were back", o, r.AllBackS)
	}
	// Node 2 is a new process, whose figures are both processes'; the
	// moved members' later deliveries are node 3's.
	if r.PIDBefore <= 0 || r.PIDAfter <= 0 || r.PIDBefore == r.PIDAfter || c.Nodes[1].PID != r.PIDAfter {
		t.Errorf("pids %d then %d, node table %d; want two processes, the table giving the new one", r.PIDBefore, r.PIDAfter, c.Nodes[1].PID)
	}
	if c.Nodes[1].CPUS == nil || c.Nodes[2].Deliveries <= c.Nodes[0].Deliveries {
		t.Errorf("node 2's CPU %v, node 3's deliveries %d (node 1's %d); want a CPU figure, and more for node 3", c.Nodes[1].CPUS, c.Nodes[2].Deliveries, c.Nodes[0].Deliveries)
	}
	for _, want := range []string{"rolling restart of n2", "members moved: 10 (of 10 on n2), not back: 0", "nobody seen to leave or come back"} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report does not say %q", want)
		}
	}
	for _, pid := range []int{r.PIDBefore, r.PIDAfter} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("chatd %d still there after the run (kill 0: %v)", pid, err)
		}
	}
}

// TestRestartSeen runs the same restart with --resume-grace 0: node 2's
// users are then forgotten, and announced as gone, the moment it stops, so
// their resumes start new sessions. chatbench must see the flaps and the
// incomplete resumes, report them and fail.
func TestRestartSeen(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--chatd", chatdBin, "--nodes", "3", "--restart-node", "2", "--chatd-arg=--resume-grace=0",
		"--members", "15", "--senders", "3", "--rate", "60", "--duration", "1s", "--drain-timeout", "1s",
		"--idle-wait", "0s", "--progress", "0"}, &stdout, &stderr)
	var ue *usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "not complete") || !strings.Contains(err.Error(), "seen to leave or come back") {
		t.Fatalf("run = %v; want it to fail for incomplete resumes and flaps\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, &stdout)
	}
	r := rep.Chatd.Restart
	if rep.OK || r == nil {
		t.Fatalf("ok %v, restart %v; want a failed run with a restart", rep.OK, r)
	}
	// Each of the five on n2 was forgotten, and all ten others saw it go.
	if r.Moved != 5 || r.Incomplete != 5 || r.Flapped < 5*10 {
		t.Errorf("%d moved, %d incomplete, %d flaps; want 5, 5, at least 50", r.Moved, r.Incomplete, r.Flapped)
	}
	if !strings.Contains(stdout.String(), "PROBLEM: ") {
		t.Errorf("the text report shows no problem:\n%s", &stdout)
	}
}

// TestInDoubt checks how a sender's messages in flight when it moved are
// counted: those that come back after its resume are sent, the others are
// not, and one that reaches another member but never its sender is lost.
func TestInDoubt(t *testing.T) {
	// Sender m0, receivers m1 and m2. m0 sent 0…9 and had 0…5 back when
	// its stream ended, with no credit left (window 4).
	ms := []*member{newMember(0, 1, 0), newMember(1, 1, 0), newMember(2, 1, 0)}
	m0 := ms[0]
	m0.snd = &sender{credits: make(chan struct{}, 4)}
	m0.snd.sent.Store(10)
	echo := func(m *member, ns ...uint64) {
		for _, n := range ns {
			onMessage(m, string(appendText(nil, 0, n, now())))
		}
	}
	echo(m0, 0, 1, 2, 3, 4, 5)
	for len(m0.snd.credits) > 0 {
		<-m0.snd.credits
	}
	m0.mu.Lock()
	m0.openDoubt()
	m0.mu.Unlock()
	if !m0.snd.unsettled.Load() || m0.doubt.lo != 6 || m0.doubt.hi != 10 {
		t.Fatalf("after the move: unsettled %v, window %d…%d; want 6…10, unsettled", m0.snd.unsettled.Load(), m0.doubt.lo, m0.doubt.hi-1)
	}

	// The replay brings 6 and 7 back, with no credit: the move gave the
	// whole window back. 10, sent after the move, settles it.
	echo(m0, 6, 7)
	if len(m0.snd.credits) != 0 || !m0.snd.unsettled.Load() {
		t.Errorf("after the replay: %d credits, unsettled %v; want 0, still unsettled", len(m0.snd.credits), m0.snd.unsettled.Load())
	}
	m0.snd.sent.Add(1)
	echo(m0, 10)
	if m0.snd.unsettled.Load() || m0.snd.unconfirmed.Load() != 2 || m0.inDoubt != 4 || len(m0.snd.credits) != 1 {
		t.Errorf("after 10: unsettled %v, unconfirmed %d, in doubt %d, credits %d; want settled, 2 (8 and 9), 4, 1",
			m0.snd.unsettled.Load(), m0.snd.unconfirmed.Load(), m0.inDoubt, len(m0.snd.credits))
	}

	// m1 got what m0 did: nothing lost. m2 got 8 too, which m0 never
	// did: lost to m0.
	echo(ms[1], 0, 1, 2, 3, 4, 5, 6, 7, 10)
	echo(ms[2], 0, 1, 2, 3, 4, 5, 6, 7, 8, 10)
	var r result
	r.account(ms, 1)
	if r.Sent != 11 || r.ExpectedDeliveries != 3*9 || r.Deliveries != 9+9+10 || r.Lost != 1 {
		t.Errorf("sent %d, expected %d, delivered %d, lost %d; want 11, 27, 28, 1", r.Sent, r.ExpectedDeliveries, r.Deliveries, r.Lost)
	}
	if !strings.Contains(strings.Join(r.Problems, "; "), "1 of the messages lost reached other members but never came back to their sender") {
		t.Errorf("problems %q; want the message lost to its sender named", r.Problems)
	}

	// The private message a moved sender sends itself settles the window
	// too: whatever did not come back before it never will.
	m := newMember(0, 1, 0)
	m.snd = &sender{}
	m.snd.sent.Store(3)
	m.openDoubt()
	echo(m, 0)
	m.settle()
	if m.snd.unsettled.Load() || m.snd.unconfirmed.Load() != 2 {
		t.Errorf("settled by its marker: unsettled %v, unconfirmed %d; want settled, 2", m.snd.unsettled.Load(), m.snd.unconfirmed.Load())
	}
}

// TestSettleMarker checks, against a real chatd, the private message a
// moved sender sends itself: it comes back and settles the sender's
// messages in doubt, none of which came back before it.
func TestSettleMarker(t *testing.T) {
	p, err := startChatd(t.Context(), chatdBin, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	})
	tr, err := newGRPCTransport(t.Context(), []string{p.addr}, 0, 10*time.Second, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	m := newMember(0, 1, 0)
	m.snd = &sender{}
	c, _, err := tr.join(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	// Two messages in doubt that never went anywhere.
	m.snd.sent.Store(2)
	m.openDoubt()
	received := make(chan error, 1)
	go func() { received <- c.receive(m) }()
	t.Cleanup(func() {
		tr.close()
		<-received
	})
	if err := c.sendPrivate(m.name, settleText); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if !waitUntil(ctx, func() bool { return !m.snd.unsettled.Load() }) {
		t.Fatal("the private message did not settle the messages in doubt")
	}
	if n := m.snd.unconfirmed.Load(); n != 2 {
		t.Errorf("%d unconfirmed, want 2", n)
	}
}
