package main

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTypingOnly runs typers and no senders against a real chatd: each of
// the 3 typers starts once and stops at the end of the 2 s phase, and with
// 3 typers at most chatd names them, so every start and every stop
// changes what the channel shows and reaches all 10 sessions, the typers'
// own included: 6 × 10 typing events, none of which may upset the seq
// checks, and at the end everyone is shown nobody typing.
func TestTypingOnly(t *testing.T) {
	rep, text := runJSON(t, "--chatd", chatdBin, "--members", "10", "--senders", "0", "--typers", "3", "--typing-pause", "0",
		"--duration", "2s", "--idle-wait", "0s", "--progress", "0")
	if !rep.OK || rep.Mode != "typing-only" || rep.Typers != 3 || rep.Baseline != nil {
		t.Errorf("ok %v, mode %q, typers %d, baseline %v; want true, typing-only, 3, none", rep.OK, rep.Mode, rep.Typers, rep.Baseline)
	}
	if rep.DurationS == nil || *rep.DurationS != 2 || rep.TypingEveryS == nil || *rep.TypingEveryS != 2 {
		t.Errorf("duration %v, typing every %v; want 2 s and 2 s", rep.DurationS, rep.TypingEveryS)
	}
	c := rep.Chatd
	if c.TypingSent != 6 || c.TypingStops != 3 || c.TypingEvents != 60 {
		t.Errorf("typing sent %d (stops %d), events %d; want 6 (3), 60", c.TypingSent, c.TypingStops, c.TypingEvents)
	}
	if c.TypingRejected != 0 || c.TypingShownAtEnd != 0 || c.SeqGaps != 0 || c.Sent != 0 || c.Deliveries != 0 || c.Foreign != 0 || c.Errors != 0 {
		t.Errorf("typing refused %d, shown at end %d, seq gaps %d, sent %d, deliveries %d, foreign %d, errors %d; want all 0",
			c.TypingRejected, c.TypingShownAtEnd, c.SeqGaps, c.Sent, c.Deliveries, c.Foreign, c.Errors)
	}
	if c.PhaseS < 2 || c.ServerCPUS == nil || c.ServerCPUPerS == nil || *c.ServerCPUPerS < 0 {
		t.Errorf("phase %g s, server CPU %v, per second %v; want at least 2 s and readings", c.PhaseS, c.ServerCPUS, c.ServerCPUPerS)
	}
	for _, want := range []string{"nobody sending, 3 typing for 2s", "typing events received", "server CPU per second", "nobody shown typing once the typers stopped"} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report does not say %q", want)
		}
	}
}

// TestTypingWithMessages has typers type while senders send, in two
// channels, through the gateway as the page does: the typing events,
// unnumbered, must not count as gaps or losses, every message must still
// reach its channel once, and each channel's 2 typers' starts and stops
// reach its 10 members.
func TestTypingWithMessages(t *testing.T) {
	rep, _ := runJSON(t, "--chatd", chatdBin, "--transport", "grpc-web", "--members", "20", "--channels", "2",
		"--senders", "2", "--rate", "20", "--typers", "4", "--typing-pause", "0",
		"--duration", "2s", "--idle-wait", "0s", "--progress", "0")
	if !rep.OK || rep.Mode != "rate" {
		t.Errorf("ok %v, mode %q; want true, rate", rep.OK, rep.Mode)
	}
	c := rep.Chatd
	checkResultReach(t, c, 20, 10)
	if c.TypingSent != 8 || c.TypingStops != 4 || c.TypingEvents != 2*4*10 || c.TypingShownAtEnd != 0 {
		t.Errorf("typing sent %d (stops %d), events %d, shown at end %d; want 8 (4), 80, 0", c.TypingSent, c.TypingStops, c.TypingEvents, c.TypingShownAtEnd)
	}
}

// typingLog is a client that records its typing requests.
type typingLog struct {
	mu   sync.Mutex
	reqs []typingReq
}

type typingReq struct {
	at      int64
	stopped bool
}

func (l *typingLog) typing(_ string, stopped bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, typingReq{at: now(), stopped: stopped})
	return nil
}

func (l *typingLog) send([]byte) error                { return errors.New("a typer sends no message") }
func (l *typingLog) sendPrivate(string, string) error { return errors.New("a typer sends no message") }
func (l *typingLog) joinChannel(string) error         { return nil }
func (l *typingLog) receive(*member) error            { return nil }
func (l *typingLog) close()                           {}

// TestTypingBursts checks a typer's schedule, scaled down 100 times from
// the defaults: bursts of 60 ms with a request every 20 ms, each ended by
// a stop, 40 ms apart. Whatever its random start, a typer's requests are
// bursts of typing, each followed by one stop; within a burst, no two are
// closer than --typing-every (chatd would drop the second); the last is a
// stop, at the deadline or before; and over 1 s (10 cycles) it types in
// about 10 bursts.
func TestTypingBursts(t *testing.T) {
	t.Parallel()
	cfg := &config{typingEvery: 20 * time.Millisecond, typingFor: 60 * time.Millisecond, typingPause: 40 * time.Millisecond}
	const typers = 8
	start := now()
	deadline := start + int64(time.Second)
	logs := make([]*typingLog, typers)
	var wg sync.WaitGroup
	for k := range logs {
		logs[k] = &typingLog{}
		m := newMember(k, 0, 0)
		m.typ, m.client = &typer{}, logs[k]
		wg.Go(func() {
			if err := typeAway(t.Context(), m, cfg, start, deadline); err != nil {
				t.Errorf("typer %d: %v", k, err)
			}
		})
	}
	wg.Wait()
	for k, l := range logs {
		reqs := l.reqs
		if len(reqs) == 0 || !reqs[len(reqs)-1].stopped {
			t.Errorf("typer %d: requests %+v; want bursts, the last ended with a stop", k, reqs)
			continue
		}
		bursts := 0
		for i, r := range reqs {
			switch {
			case r.at < start:
				t.Errorf("typer %d: request %d before the phase", k, i)
			case r.stopped && (i == 0 || reqs[i-1].stopped):
				t.Errorf("typer %d: request %d stops a typing that was not started", k, i)
			case r.stopped:
				bursts++
			case i > 0 && !reqs[i-1].stopped && r.at-reqs[i-1].at < int64(cfg.typingEvery):
				t.Errorf("typer %d: refreshes %d and %d %s apart, closer than every %s", k, i-1, i, time.Duration(r.at-reqs[i-1].at), cfg.typingEvery)
			}
		}
		if last := reqs[len(reqs)-1].at; last > deadline+int64(50*time.Millisecond) {
			t.Errorf("typer %d: the last stop %s after the deadline", k, time.Duration(last-deadline))
		}
		// 10 cycles; the first and the last may be cut short, and a
		// busy machine may stretch a burst past its cycle.
		if bursts < 6 || bursts > 11 {
			t.Errorf("typer %d: %d bursts in 1 s of 100 ms cycles, want about 10", k, bursts)
		}
	}
}
