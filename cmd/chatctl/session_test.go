package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
)

// These tests run chatctl's commands in-process against the server library,
// so that the race detector and goleak see chatctl's goroutines. The e2e
// package runs the real binaries.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is an in-process chatd.
type testServer struct {
	addr string
	srv  *server.Server
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	srv, addr := servertest.Start(t, server.DefaultConfig(), slog.New(slog.DiscardHandler))
	return &testServer{addr: addr, srv: srv}
}

// stop shuts the server down, as SIGTERM does chatd.
func (ts *testServer) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
}

// waitOnline waits until name is online.
func (ts *testServer) waitOnline(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range ts.srv.Users() {
			if u.GetUsername() == name {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not come online within 10s", name)
}

// bgRun is chatctl join running in the background with stdin from a pipe.
type bgRun struct {
	stdin          *io.PipeWriter
	stdout, stderr bytes.Buffer // read only after done is closed
	code           int
	done           chan struct{}
}

func startJoin(t *testing.T, ctx context.Context, args ...string) *bgRun {
	t.Helper()
	pr, pw := io.Pipe()
	r := &bgRun{stdin: pw, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = run(ctx, append([]string{"join"}, args...), pr, &r.stdout, &r.stderr)
	}()
	t.Cleanup(func() {
		pw.Close() // ends chatctl's stdin reader
		<-r.done
	})
	return r
}

func (r *bgRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("chatctl join did not end within 10s")
	}
}

func TestJoinFromPipe(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	code, stdout, stderr := runCLI(t, t.Context(), "hi\n\n/who\n", "join", "--name", "bot", "--server", ts.addr)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr: %s", code, stderr)
	}
	for _, want := range []string{"* you joined as bot", "Online (1): bot (you)", "* you joined #general (1 member)", "#general bot: hi", "* bot left (logged out)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, stdout)
		}
	}
	if got := ts.srv.Users(); len(got) != 0 {
		t.Errorf("still online after the end of input: %v", got)
	}
}

func TestJoinJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	code, stdout, stderr := runCLI(t, t.Context(), "hi\n/who\n", "join", "--name", "bot", "--server", ts.addr, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr: %s", code, stderr)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		ev := &chatv1.ChatResponse{}
		if err := protojson.Unmarshal([]byte(line), ev); err != nil {
			t.Fatalf("stdout line %q is not a ChatResponse: %v", line, err)
		}
		kinds = append(kinds, string(ev.ProtoReflect().WhichOneof(ev.ProtoReflect().Descriptor().Oneofs().ByName("event")).Name()))
	}
	if got, want := strings.Join(kinds, ","), "welcome,channel_joined,message,user_left"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if !strings.Contains(stderr, "Online (1): bot (you)") {
		t.Errorf("/who output should go to stderr in JSON mode; stderr: %q", stderr)
	}
}

func TestJoinInterruptLeaves(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx, interrupt := context.WithCancel(t.Context())
	r := startLive(t, ctx, "--name", "alice", "--server", ts.addr)
	// Joined as chatctl sees it: the server lists alice as soon as it
	// takes her join, before her welcome may have reached chatctl, and a
	// Ctrl-C then is one while joining.
	r.expect(t, `\* you joined as alice`)

	start := time.Now()
	interrupt() // what Ctrl-C does
	if code := r.wait(t); code != exitOK {
		t.Errorf("exit code %d after Ctrl-C, want 0; stderr: %s", code, r.stderr.String())
	}
	if !strings.Contains(r.stdout.String(), "* alice left (logged out)") {
		t.Errorf("Ctrl-C did not log out; stdout:\n%s", r.stdout.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to leave", d)
	}
}

func TestJoinQuit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := startJoin(t, t.Context(), "--name", "alice", "--server", ts.addr)
	ts.waitOnline(t, "alice")
	if _, err := io.WriteString(r.stdin, "/help\n/nope\n/quit\n"); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.code != exitOK {
		t.Errorf("exit code %d after /quit, want 0; stderr: %s", r.code, r.stderr.String())
	}
	out := r.stdout.String()
	for _, want := range []string{"/who", "unknown command /nope", "* alice left (logged out)"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
}

func TestJoinConnectionLost(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr, "--reconnect-timeout", "0")
	r.expect(t, `\* you joined as alice`) // welcomed: a session to lose, not a join
	ts.stop(t)
	if code := r.wait(t); code != exitConnLost {
		t.Errorf("exit code %d, want %d (connection lost)", code, exitConnLost)
	}
	if want := "chatctl: connection lost: server shutting down"; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", r.stderr.String(), want)
	}
}

func TestJoinRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := startJoin(t, t.Context(), "--name", "alice", "--server", ts.addr)
	ts.waitOnline(t, "alice")

	tests := []struct {
		name string
		code int
		want string
	}{
		{"ALICE", exitNameTaken, `cannot join: username "ALICE" is taken`},
		{"a b", exitInvalidName, "cannot join: invalid username"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, t.Context(), "", "join", "--name", tt.name, "--server", ts.addr)
		if code != tt.code {
			t.Errorf("join as %q: exit code %d, want %d", tt.name, code, tt.code)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("join as %q: stderr %q does not say %q", tt.name, stderr, tt.want)
		}
	}
	r.stdin.Close()
	r.wait(t)
}

func TestSend(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	code, stdout, stderr := runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "hello")
	if code != exitOK || !strings.Contains(stdout, "#general bot: hello") {
		t.Errorf("send: exit code %d, stdout %q, stderr %q; want 0 and the delivered message", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "   ")
	if code != exitFailure || !strings.Contains(stderr, "chatctl: message not sent: message is empty") {
		t.Errorf("send of blank text: exit code %d, stderr %q; want 1 and the server's reason", code, stderr)
	}
	if got := ts.srv.Users(); len(got) != 0 {
		t.Errorf("send left users online: %v", got)
	}
}

func TestWho(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	code, stdout, _ := runCLI(t, t.Context(), "", "who", "--server", ts.addr)
	if code != exitOK || stdout != "Nobody is online.\n" {
		t.Errorf("who on an empty server: exit code %d, stdout %q", code, stdout)
	}
	r := startJoin(t, t.Context(), "--name", "alice", "--server", ts.addr)
	ts.waitOnline(t, "alice")
	code, stdout, _ = runCLI(t, t.Context(), "", "who", "--server", ts.addr, "--output", "json")
	resp := &chatv1.ListUsersResponse{}
	if err := protojson.Unmarshal([]byte(stdout), resp); err != nil || code != exitOK {
		t.Fatalf("who -o json: exit code %d, %q: %v", code, stdout, err)
	}
	if len(resp.GetUsers()) != 1 || resp.GetUsers()[0].GetUsername() != "alice" || resp.GetUsers()[0].GetJoinTime() == nil {
		t.Errorf("who -o json listed %v, want alice with a join time", resp.GetUsers())
	}
	r.stdin.Close()
	r.wait(t)
}
