package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests are about several --server addresses: the order they are
// tried in, moving on from one that is unreachable or shutting down, at
// the first connection and when a session's connection breaks.

// servers is the value of --server for addrs.
func servers(addrs ...string) string { return strings.Join(addrs, ",") }

// The order is a shuffle of the list, a different one from run to run, so
// that clients given the same list do not all start with its first server.
func TestInTurnShuffles(t *testing.T) {
	t.Parallel()
	list := []string{"a:1", "b:2", "c:3"}
	firsts := map[string]int{}
	for range 300 {
		order := inTurn(list)
		if got := slices.Sorted(slices.Values(order)); !slices.Equal(got, list) {
			t.Fatalf("inTurn(%q) = %q, want the same servers", list, order)
		}
		firsts[order[0]]++
	}
	// Each comes first about 100 times in 300; 40 is far enough below
	// that a fair shuffle misses it with a probability under 1e-9.
	for _, s := range list {
		if firsts[s] < 40 {
			t.Errorf("%s came first %d times in 300 (%v), want about a third of them", s, firsts[s], firsts)
		}
	}
	if !slices.Equal(list, []string{"a:1", "b:2", "c:3"}) {
		t.Errorf("inTurn changed its argument: %q", list)
	}
}

func TestMovesOn(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{withExitCode(exitUnreachable, errors.New("cannot reach chatd at a:1: connection refused")), true},
		{joinError(status.Error(codes.Unavailable, "server shutting down, reconnect later")), true},
		{status.Error(codes.Unavailable, "server shutting down, reconnect later"), true},
		{status.Error(codes.AlreadyExists, "username taken"), false},
		{joinError(status.Error(codes.AlreadyExists, "username taken")), false},
		{joinError(status.Error(codes.ResourceExhausted, "server is full")), false},
		{status.Error(codes.PermissionDenied, "no"), false},
		{usageErrorf("bad --server"), false},
		{chatclient.ErrNoWelcome, false},
		{errors.New("interrupted while connecting to a:1"), false},
	} {
		if got := movesOn(tt.err); got != tt.want {
			t.Errorf("movesOn(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// tryInTurn's decisions, with attempts that fail as told.
func TestTryInTurn(t *testing.T) {
	t.Parallel()
	refused := func(addr string) error {
		return withExitCode(exitUnreachable, fmt.Errorf("cannot reach chatd at %s: connection refused (is it running?)", addr))
	}
	shuttingDown := status.Error(codes.Unavailable, "server shutting down, reconnect later")
	taken := status.Error(codes.AlreadyExists, `username "bot" is taken: choose another name`)
	order := []string{"a:1", "b:2", "c:3"}
	for _, tt := range []struct {
		name   string
		order  []string
		errs   []error // what each attempt returns, in order
		tried  int     // how many attempts are made
		server int
		err    string // the error returned, after explain
		code   int    // its exit code
		stderr string
	}{
		{name: "first answers", order: order, errs: []error{nil}, tried: 1, server: 0},
		{
			name: "refused, then answers", order: order, errs: []error{refused("a:1"), nil}, tried: 2, server: 1,
			stderr: "chatctl: cannot reach chatd at a:1: connection refused (is it running?); trying b:2...\n",
		},
		{
			name: "shutting down, then answers", order: order, errs: []error{shuttingDown, refused("b:2"), nil}, tried: 3, server: 2,
			stderr: "chatctl: a:1: cannot join: server shutting down, reconnect later; trying b:2...\n" +
				"chatctl: cannot reach chatd at b:2: connection refused (is it running?); trying c:3...\n",
		},
		{
			name: "a refusal the next would repeat", order: order, errs: []error{refused("a:1"), taken}, tried: 2, server: 1,
			err: `b:2: cannot join: username "bot" is taken: choose another name`, code: exitNameTaken,
			stderr: "chatctl: cannot reach chatd at a:1: connection refused (is it running?); trying b:2...\n",
		},
		{
			name: "none left", order: order[:2], errs: []error{shuttingDown, refused("b:2")}, tried: 2, server: 1,
			err: "cannot reach chatd at b:2: connection refused (is it running?); no server in --server left to try", code: exitUnreachable,
			stderr: "chatctl: a:1: cannot join: server shutting down, reconnect later; trying b:2...\n",
		},
		{
			// One server: its error as it always was.
			name: "one server", order: order[:1], errs: []error{shuttingDown}, tried: 1, server: 0,
			err: "cannot join: server shutting down, reconnect later", code: exitUnreachable,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			tried := 0
			server, err := tryInTurn(t.Context(), tt.order, &stderr, func(i int) error {
				if i != tried {
					t.Errorf("attempt %d went to server %d", tried, i)
				}
				tried++
				return tt.errs[i]
			}, joinError)
			if tried != tt.tried || server != tt.server {
				t.Errorf("%d attempts, ending at server %d; want %d, ending at %d", tried, server, tt.tried, tt.server)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("error %v, want %q", err, tt.err)
			case tt.err != "" && exitCode(err) != tt.code:
				t.Errorf("exit code %d, want %d", exitCode(err), tt.code)
			}
			if stderr.String() != tt.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}

	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		tried := 0
		_, err := tryInTurn(ctx, order, &bytes.Buffer{}, func(int) error {
			tried++
			cancel() // Ctrl-C during the attempt
			return status.Error(codes.Unavailable, "context canceled")
		}, joinError)
		if tried != 1 || err == nil {
			t.Errorf("%d attempts, error %v; want to stop after the first", tried, err)
		}
	})
}

// Every command takes a list of servers and uses the first that answers,
// whichever order it tries them in; it says on stderr when it moves on.
func TestCommandsSkipUnreachableServer(t *testing.T) {
	t.Parallel()
	live := startServer(t)
	dead := closedPort(t)
	list := servers(dead, live.addr)
	note := "chatctl: cannot reach chatd at " + dead + ": connection refused (is it running?); trying " + live.addr + "...\n"
	for _, tt := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"who"}, "Nobody is online."},
		{[]string{"channels"}, "general"},
		{[]string{"send", "--name", "bot", "hi"}, "#general bot: hi"},
		{[]string{"join", "--name", "alice"}, "chatctl: connected to " + live.addr + "\n"},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			// Not parallel: one name on one server at a time.
			// Run until both orders were seen: the dead server tried
			// first (and moved on from) and not. 60 runs miss one with a
			// probability of 2^-59.
			var deadFirst, liveFirst bool
			for run := 0; run < 60 && !(deadFirst && liveFirst); run++ {
				code, stdout, stderr := runCLI(t, t.Context(), "", append(tt.args, "--server", list, "--dial-timeout", slowDial)...)
				if code != exitOK || !strings.Contains(stdout, tt.want) {
					t.Fatalf("exit code %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, tt.want)
				}
				switch stderr {
				case note:
					deadFirst = true
				case "":
					liveFirst = true
				default:
					t.Fatalf("stderr %q, want nothing or %q", stderr, note)
				}
			}
			if !deadFirst || !liveFirst {
				t.Errorf("in 60 runs, the dead server was tried first: %v, the live one: %v; want both to happen", deadFirst, liveFirst)
			}
		})
	}
}

// With no server that answers, every command fails at once with exit code
// 3, having said why for each.
func TestCommandsNoServerAnswers(t *testing.T) {
	t.Parallel()
	a, b := closedPort(t), closedPort(t)
	for _, args := range [][]string{
		{"who"},
		{"channels"},
		{"send", "--name", "bot", "hi"},
		{"join", "--name", "alice"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, stdout, stderr := runCLI(t, t.Context(), "", append(args, "--server", servers(a, b), "--dial-timeout", slowDial)...)
			if code != exitUnreachable {
				t.Errorf("exit code %d, want %d", code, exitUnreachable)
			}
			refused := func(addr string) string {
				return "cannot reach chatd at " + addr + ": connection refused (is it running?)"
			}
			ab := "chatctl: " + refused(a) + "; trying " + b + "...\nchatctl: " + refused(b) + "; no server in --server left to try\n"
			ba := "chatctl: " + refused(b) + "; trying " + a + "...\nchatctl: " + refused(a) + "; no server in --server left to try\n"
			if stderr != ab && stderr != ba {
				t.Errorf("stderr %q, want\n%q or\n%q", stderr, ab, ba)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if d := time.Since(start); d > promptly {
				t.Errorf("gave up after %s, want well within --dial-timeout %s", d, slowDial)
			}
		})
	}
}

// who and channels move on from a server that answers UNAVAILABLE, as one
// shutting down does, and not from one that refuses otherwise.
func TestListingsMoveOnFromUnavailable(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"who", "channels"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			fakes := startFakes(t, 2)
			going, up := fakes[0], fakes[1]
			going.failLists(status.Error(codes.Unavailable, "server shutting down, reconnect later"))
			note := fmt.Sprintf("chatctl: %s: cannot list %s: server shutting down, reconnect later; trying %s...\n", going.addr, map[string]string{"who": "users", "channels": "channels"}[cmd], up.addr)
			var movedOn bool
			for run := 0; run < 60 && !movedOn; run++ {
				code, stdout, stderr := runCLI(t, t.Context(), "", cmd, "--server", servers(going.addr, up.addr))
				if code != exitOK || stdout == "" {
					t.Fatalf("exit code %d, stdout %q, stderr %q; want 0 and the list", code, stdout, stderr)
				}
				switch stderr {
				case note:
					movedOn = true
				case "":
				default:
					t.Fatalf("stderr %q, want nothing or %q", stderr, note)
				}
			}
			if !movedOn {
				t.Errorf("in 60 runs, never tried the server shutting down first")
			}

			// A refusal of another kind every node would repeat.
			going.failLists(status.Error(codes.ResourceExhausted, "too many list calls"))
			var refused bool
			for run := 0; run < 60 && !refused; run++ {
				code, _, stderr := runCLI(t, t.Context(), "", cmd, "--server", servers(going.addr, up.addr))
				switch {
				case code == exitOK && stderr == "":
				case code == exitFailure && strings.HasPrefix(stderr, "chatctl: "+going.addr+": cannot list ") && strings.HasSuffix(stderr, ": too many list calls\n"):
					refused = true
				default:
					t.Fatalf("exit code %d, stderr %q; want 0, or 1 and the refusal alone", code, stderr)
				}
			}
			if !refused {
				t.Errorf("in 60 runs, never tried the refusing server first")
			}
		})
	}
}

// join's first connection moves on from a server that answers the join
// UNAVAILABLE, as one shutting down does.
func TestJoinMovesOnFromServerShuttingDown(t *testing.T) {
	t.Parallel()
	fakes := startFakes(t, 2)
	c := &connector{opts: &options{dialTimeout: liveTimeout}, servers: []string{fakes[0].addr, fakes[1].addr}}
	type result struct {
		l   *link
		err error
	}
	done := make(chan result, 1)
	stderr := newLines()
	go func() {
		l, _, err := c.first(t.Context(), stderr, &chatv1.Join{Username: "alice"})
		done <- result{l, err}
	}()
	going := fakes[0].next(t)
	if going.server != fakes[0].addr {
		t.Fatalf("first stream to %s, want %s", going.server, fakes[0].addr)
	}
	going.recv(t)
	going.end <- status.Error(codes.Unavailable, "server shutting down, reconnect later")
	up := fakes[1].next(t)
	if up.server != fakes[1].addr {
		t.Fatalf("second stream to %s, want %s", up.server, fakes[1].addr)
	}
	up.welcome(t)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.close()
	if r.l.server != 1 {
		t.Errorf("joined on server %d, want 1", r.l.server)
	}
	if want := "chatctl: " + fakes[0].addr + ": cannot join: server shutting down, reconnect later; trying " + fakes[1].addr + "...\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// A reconnection goes to the servers after the one lost, in turn, and to
// the one lost last.
func TestReconnectGoesRound(t *testing.T) {
	t.Parallel()
	fakes := startFakes(t, 3)
	c := &connector{opts: &options{dialTimeout: liveTimeout}, servers: []string{fakes[0].addr, fakes[1].addr, fakes[2].addr}}
	done := make(chan reconnected, 1)
	go func() {
		done <- c.reconnect(t.Context(), time.Now().Add(liveTimeout), &chatv1.Join{Username: "alice", ResumeToken: "tok", LastSeq: 2}, 0)
	}()
	for _, want := range []int{1, 2} {
		fs := fakes[0].next(t)
		if fs.server != fakes[want].addr {
			t.Fatalf("stream to %s, want %s (server %d)", fs.server, fakes[want].addr, want)
		}
		fs.recv(t)
		fs.end <- status.Error(codes.Unavailable, "server shutting down, reconnect later")
	}
	back := fakes[0].next(t)
	if back.server != fakes[0].addr {
		t.Fatalf("stream to %s, want %s, the one lost, last", back.server, fakes[0].addr)
	}
	back.resume(t, 2)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.link.close()
	if res.link.server != 0 {
		t.Errorf("reconnected to server %d, want 0", res.link.server)
	}
}

// A session whose server goes away moves to the next one, resumes there,
// and goes on; when that one goes away too, back to the first.
func TestSessionMovesToTheNextServer(t *testing.T) {
	t.Parallel()
	fakes := startFakes(t, 2)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", servers(fakes[0].addr, fakes[1].addr), "--reconnect-timeout", "10s")
	first := fakes[0].next(t)
	first.welcome(t)
	here := first.server
	there := fakes[0].addr
	if here == there {
		there = fakes[1].addr
	}
	alice.expect(t, `^chatctl: connected to `+here+`$`)
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)

	first.end <- status.Error(codes.Unavailable, "server shutting down, reconnect later")
	alice.expect(t, `^chatctl: connection to `+here+` lost \(server shutting down, reconnect later\); reconnecting for up to 10s, trying `+there+` first\.\.\.$`)
	second := fakes[0].next(t)
	if second.server != there {
		t.Fatalf("reconnected to %s, want %s, the other server", second.server, there)
	}
	second.resume(t, 2)
	alice.expect(t, `^chatctl: connected to `+there+`$`)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.send(t, "on the other one")
	if m := second.recv(t).GetSend(); m.GetText() != "on the other one" {
		t.Fatalf("chatctl sent %v to %s, want the line", m, there)
	}

	// A broken connection, not a shutdown: back to the first server.
	second.end <- status.Error(codes.Internal, "stream terminated by RST_STREAM")
	alice.expect(t, `^chatctl: connection to `+there+` lost \(stream terminated by RST_STREAM\); reconnecting for up to 10s, trying `+here+` first\.\.\.$`)
	third := fakes[0].next(t)
	if third.server != here {
		t.Fatalf("reconnected to %s, want %s", third.server, here)
	}
	third.resume(t, 2)
	alice.expect(t, `^chatctl: connected to `+here+`$`)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.send(t, "back again")
	if m := third.recv(t).GetSend(); m.GetText() != "back again" {
		t.Fatalf("chatctl sent %v to %s, want the line", m, here)
	}
}

// A refusal of the resume that another server would repeat (the name
// taken) ends the session, naming the server that refused.
func TestSessionStopsAtRefusalOnTheNextServer(t *testing.T) {
	t.Parallel()
	fakes := startFakes(t, 2)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", servers(fakes[0].addr, fakes[1].addr), "--reconnect-timeout", "10s")
	first := fakes[0].next(t)
	first.welcome(t)
	alice.expect(t, clock+`\* you joined #general`)
	first.end <- status.Error(codes.Unavailable, "server shutting down, reconnect later")
	second := fakes[0].next(t)
	second.recv(t)
	second.end <- status.Error(codes.AlreadyExists, `username "alice" is taken: choose another name`)
	if code := alice.wait(t); code != exitConnLost {
		t.Errorf("exit code %d, want %d", code, exitConnLost)
	}
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: connection lost: server shutting down, reconnect later; cannot rejoin: the name was taken by someone else while we were away: `+second.server+`: username "alice" is taken: choose another name$`)
}

// A reconnection that runs out of time says why each server failed.
func TestReconnectGivesUpNamingEveryServer(t *testing.T) {
	t.Parallel()
	addrs := []string{lowAddr(t), lowAddr(t)}
	for addrs[1] == addrs[0] {
		addrs[1] = lowAddr(t)
	}
	stops := map[string]func(){addrs[0]: serveAt(t, addrs[0]), addrs[1]: serveAt(t, addrs[1])}
	alice := startLive(t, t.Context(), "--name", "alice", "--server", servers(addrs...), "--reconnect-timeout", "1s", "--dial-timeout", "300ms")
	line := alice.expect(t, `^chatctl: connected to `)
	here := strings.TrimPrefix(line, "chatctl: connected to ")
	there := addrs[0]
	if here == there {
		there = addrs[1]
	}
	alice.expect(t, `\* you joined as alice$`)
	stops[there]()
	stops[here]()
	alice.expect(t, `^chatctl: connection to `+here+` lost \(server shutting down.*\); reconnecting for up to 1s, trying `+there+` first\.\.\.$`)
	if code := alice.wait(t); code != exitConnLost {
		t.Errorf("exit code %d, want %d", code, exitConnLost)
	}
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: connection lost: server shutting down.*; could not reconnect within 1s: `+
		`cannot reach chatd at `+there+`: connection refused \(is it running\?\); cannot reach chatd at `+here+`: connection refused \(is it running\?\)$`)
}
