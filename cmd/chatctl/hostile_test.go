package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A hostile server's words reach the terminal escaped in chatctl's errors
// too, not only in the events it prints: a refusal's message is the
// server's to write, and an escape sequence in it could retitle the window
// or rewrite what is on the screen.
const hostile = "\x1b]0;pwned\x07\x1b[2Jgo away"

// escapedHostile is hostile as chatctl shows it.
const escapedHostile = `\x1b]0;pwned\x07\x1b[2Jgo away`

func checkEscaped(t *testing.T, stderr string) {
	t.Helper()
	if strings.ContainsAny(stderr, "\x1b\x07") {
		t.Errorf("stderr %q holds the server's control characters raw", stderr)
	}
	if !strings.Contains(stderr, escapedHostile) {
		t.Errorf("stderr %q does not show the server's message, escaped", stderr)
	}
}

func TestHostileJoinRefusalEscaped(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, stderr := runCLI(t, t.Context(), "", "send", "--name", "alice", "--server", fake.addr, "hi")
		done <- result{code, stderr}
	}()
	fs := fake.next(t)
	fs.recv(t)
	fs.end <- status.Error(codes.AlreadyExists, hostile)
	r := <-done
	if r.code != exitNameTaken {
		t.Errorf("exit code %d, want %d", r.code, exitNameTaken)
	}
	checkEscaped(t, r.stderr)
}

func TestHostileListingRefusalEscaped(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	fake.failLists(status.Error(codes.ResourceExhausted, hostile))
	code, _, stderr := runCLI(t, t.Context(), "", "who", "--server", fake.addr)
	if code != exitFailure {
		t.Errorf("exit code %d, want %d", code, exitFailure)
	}
	checkEscaped(t, stderr)
}

// The lines that say why chatctl moves on from a server are escaped too.
func TestHostileReasonToMoveOnEscaped(t *testing.T) {
	t.Parallel()
	fakes := startFakes(t, 2)
	for _, f := range fakes {
		f.failLists(status.Error(codes.Unavailable, hostile))
	}
	code, _, stderr := runCLI(t, t.Context(), "", "channels", "--server", servers(fakes[0].addr, fakes[1].addr))
	if code != exitFailure {
		t.Errorf("exit code %d, want %d", code, exitFailure)
	}
	if n := strings.Count(stderr, escapedHostile); n != 2 {
		t.Errorf("stderr %q shows the server's message %d times, want twice (moving on, then giving up)", stderr, n)
	}
	checkEscaped(t, stderr)
}
