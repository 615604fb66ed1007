package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// retryable is chatclient.Retryable (tested there) for what chatclient
// returns, and goes by the exit code for dial's errors, which chatctl has
// explained by then.
func TestWhenToReconnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "connection lost"), true},
		{status.Error(codes.Aborted, "taken over"), false},
		{status.Error(codes.AlreadyExists, "name taken"), false},
		{chatclient.ErrNoWelcome, true},
		{withExitCode(exitUnreachable, errors.New("cannot reach chatd")), true},
		{usageErrorf("bad --server"), false},
		{errors.New("interrupted while connecting to localhost:1"), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// breakable is a proxy between chatctl and the server whose connections a
// test can cut.
func breakable(t *testing.T, addr string) *netproxy.Proxy {
	t.Helper()
	return netproxy.Start(t, addr)
}

// cut closes every connection through p and refuses new ones until the
// test calls p.Refuse(false).
func cut(t *testing.T, p *netproxy.Proxy) {
	t.Helper()
	p.Refuse(true)
	if n := p.CloseConns(); n == 0 {
		t.Fatal("no connection to cut")
	}
}

func TestReconnectNothingMissed(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	proxy := breakable(t, ts.addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", proxy.Addr(), "--reconnect-timeout", "20s")
	alice.send(t, "/join go")
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	bob := startLive(t, t.Context(), "--name", "bob", "--server", ts.addr)
	bob.send(t, "/join go")
	alice.expect(t, clock+`\* bob joined #go$`)

	cut(t, proxy)
	alice.expect(t, `^chatctl: connection lost \(.*\); reconnecting for up to 20s\.\.\.$`)
	bob.expect(t, clock+`\* alice left \(disconnected\)$`)
	bob.send(t, "while you were away")
	bob.expect(t, clock+`#go bob: while you were away$`)
	alice.send(t, "typed while away")
	alice.expect(t, `^Not connected: this will be sent once reconnected\.$`)

	proxy.Refuse(false)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.expect(t, `^Sending 1 request typed while disconnected\.$`)
	alice.expect(t, clock+`#go bob: while you were away$`)
	alice.expect(t, clock+`#go alice: typed while away$`) // still in #go, still current
	bob.expect(t, clock+`\* alice reconnected$`)
	bob.expect(t, clock+`#go alice: typed while away$`)
	alice.send(t, "/who #go")
	alice.expect(t, `^#go \(2\): alice \(you\), bob$`)

	alice.stdin.Close()
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, alice.stderr)
	}
	if s := alice.stderr.String(); s != "" {
		t.Errorf("stderr %q, want nothing (no gap in the events)", s)
	}
	if n := strings.Count(alice.stdout.String(), "while you were away"); n != 1 {
		t.Errorf("alice saw the missed message %d times, want once", n)
	}
}

func TestReconnectAfterGraceRebuildsState(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.ResumeGrace = 200 * time.Millisecond
	ts := startServerWith(t, cfg)
	proxy := breakable(t, ts.addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", proxy.Addr(), "--reconnect-timeout", "20s")
	alice.send(t, "/join go")
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	bob := startLive(t, t.Context(), "--name", "bob", "--server", ts.addr)
	alice.expect(t, clock+`\* bob joined$`)

	cut(t, proxy)
	bob.expect(t, clock+`\* alice left \(disconnected\)$`)
	bob.send(t, "missed")
	bob.expect(t, clock+`#general bob: missed$`)
	time.Sleep(4 * cfg.ResumeGrace) // the session expires
	proxy.Refuse(false)

	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`Online \(2\): bob, alice \(you\)$`)
	// The session could not be taken back: the new one is in general,
	// and chatctl enters #go again, which stays current.
	alice.expect(t, clock+`\* you joined #general \(2 members\)$`)
	alice.expect(t, `^-- history of #general`)
	alice.expect(t, clock+`\[history\] #general bob: missed$`)
	alice.expect(t, `^-- end of history --$`)
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	alice.send(t, "/who", "/who #go", "back")
	alice.expect(t, `^Online \(2\): bob, alice \(you\)$`)
	alice.expect(t, `^#go \(1\): alice \(you\)$`)
	alice.expect(t, clock+`#go alice: back$`)
	bob.expect(t, clock+`\* alice joined$`) // a new session
	bob.send(t, "/join go")
	bob.expect(t, `^-- history of #go \(1 message\) --$`)
	bob.expect(t, clock+`\[history\] #go alice: back$`)
}

func TestReconnectIncompleteKeepsChannels(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.ResumeBuffer = 2 // a few missed events are too many
	ts := startServerWith(t, cfg)
	proxy := breakable(t, ts.addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", proxy.Addr(), "--reconnect-timeout", "20s")
	alice.send(t, "/join go", "/join rust", "/switch go")
	alice.expect(t, clock+`\* you joined #rust \(1 member\), your current channel$`)
	alice.expect(t, `^Talking in #go now\.$`)

	cut(t, proxy)
	alice.expect(t, `^chatctl: connection lost`)
	for i := range 5 {
		code, _, stderr := runCLI(t, t.Context(), "", "send", "--name", fmt.Sprintf("bot%d", i), "--server", ts.addr, "--channel", "go", "missed")
		if code != exitOK {
			t.Fatalf("send: exit code %d, stderr %s", code, stderr)
		}
	}
	proxy.Refuse(false)
	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`\* you joined #general \(1 member\)$`)
	// What was missed is unread, on every device of alice's: she is told.
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel, 5 unread$`)
	alice.expect(t, clock+`\[history\] #go bot4: missed$`)
	alice.expect(t, clock+`\* you joined #rust \(1 member\)$`)
	alice.send(t, "still in go")
	alice.expect(t, clock+`#go alice: still in go$`)
}

func TestReconnectGivesUp(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr, "--reconnect-timeout", "700ms", "--dial-timeout", "300ms")
	alice.expect(t, `\* you joined as alice$`)
	start := time.Now()
	ts.stop(t)
	alice.expect(t, `^chatctl: connection lost \(server shutting down.*\); reconnecting for up to 700ms\.\.\.$`)
	alice.send(t, "into the void")
	if code := alice.wait(t); code != exitConnLost {
		t.Errorf("exit code %d, want %d", code, exitConnLost)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want about 700ms", d)
	}
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: not connected: 1 request typed while disconnected not sent$`)
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: connection lost: server shutting down.*; could not reconnect within 700ms: cannot reach chatd at `)
}

func TestQuitWhileReconnecting(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"/quit", "Ctrl-C"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			proxy := breakable(t, ts.addr)
			ctx, interrupt := context.WithCancel(t.Context())
			defer interrupt()
			alice := startLive(t, ctx, "--name", "alice", "--server", proxy.Addr())
			alice.expect(t, `\* you joined as alice$`)
			cut(t, proxy)
			alice.expect(t, `^chatctl: connection lost`)
			start := time.Now()
			if how == "/quit" {
				alice.send(t, "/quit")
			} else {
				interrupt()
			}
			if code := alice.wait(t); code != exitOK {
				t.Errorf("exit code %d, want 0; stderr:\n%s", code, alice.stderr)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s to quit", d)
			}
		})
	}
}

func TestEndOfInputWhileReconnectingSendsThenLeaves(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	proxy := breakable(t, ts.addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", proxy.Addr())
	alice.expect(t, `\* you joined as alice$`)
	cut(t, proxy)
	alice.expect(t, `^chatctl: connection lost`)
	alice.send(t, "last words")
	alice.stdin.Close()
	time.Sleep(100 * time.Millisecond)
	proxy.Refuse(false)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.expect(t, clock+`#general alice: last words$`)
	alice.expect(t, clock+`\* alice left \(logged out\)$`)
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, alice.stderr)
	}
}

func TestNoReconnectAfterTakeover(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr, "-o", "json")
	line := alice.expect(t, `"welcome"`)
	first := &chatv1.ChatResponse{}
	if err := protojson.Unmarshal([]byte(line), first); err != nil {
		t.Fatal(err)
	}
	token := first.GetWelcome().GetResumeToken()
	if token == "" {
		t.Fatalf("no resume token in %s", line)
	}
	alice.expect(t, `"channelJoined"`)

	// Another client takes the session over with the token.
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "alice", ResumeToken: token, LastSeq: 2}}}); err != nil {
		t.Fatal(err)
	}
	w, err := stream.Recv()
	if err != nil || w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("takeover: %v, %v; want a complete recovery", w, err)
	}

	if code := alice.wait(t); code != exitConnLost {
		t.Errorf("exit code %d after a takeover, want %d", code, exitConnLost)
	}
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: session taken over by another client: `)
	if strings.Contains(alice.stderr.String(), "reconnecting") {
		t.Errorf("chatctl tried to take the session back:\n%s", alice.stderr)
	}
}

// A broken connection does not always end the stream as UNAVAILABLE: a
// stream reset by a proxy, or a connection cut mid-frame, may end it as
// INTERNAL, UNKNOWN or CANCELED, which the user did not ask for either.
func TestReconnectAfterAnyBreak(t *testing.T) {
	t.Parallel()
	for _, code := range []codes.Code{codes.Internal, codes.Unknown, codes.Canceled} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			fake := startFake(t)
			alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr, "--reconnect-timeout", "10s")
			first := fake.next(t)
			first.welcome(t)
			alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
			first.end <- status.Error(code, "stream terminated by RST_STREAM")

			alice.expect(t, `^chatctl: connection lost \(stream terminated by RST_STREAM\); reconnecting for up to 10s\.\.\.$`)
			again := fake.next(t)
			again.resume(t, 2)
			alice.expect(t, clock+`\* reconnected: nothing missed$`)
			alice.send(t, "still here")
			if m := again.recv(t).GetSend(); m.GetText() != "still here" || m.GetChannel() != "general" {
				t.Errorf("after the resume chatctl sent %v, want the line to general", m)
			}
		})
	}
}

// A /join refused while its rejection was lost with the connection (a
// rejection is not replayed on a resume) is sent again once back; its
// refusal then takes chatctl back to the channel before it, instead of
// leaving it talking in a channel it is not in.
func TestReconnectSendsUnansweredJoinAgain(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr, "--reconnect-timeout", "10s")
	first := fake.next(t)
	first.welcome(t)
	alice.expect(t, clock+`\* you joined #general`)
	alice.send(t, "/join go")
	join := first.recv(t)
	if join.GetJoinChannel().GetChannel() != "go" {
		t.Fatalf("chatctl sent %v, want a join of go", join)
	}
	first.end <- status.Error(codes.Unavailable, "connection lost") // before the rejection

	again := fake.next(t)
	again.resume(t, 2)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	if req := again.recv(t); req.GetJoinChannel().GetChannel() != "go" || req.GetClientId() != join.GetClientId() {
		t.Fatalf("after the resume chatctl sent %v, want the join of go again (client_id %s)", req, join.GetClientId())
	}
	again.send(t, 0, rejectedEv(join.GetClientId(), int32(codes.ResourceExhausted), "you are in 10 channels, the most allowed: leave one first"))
	alice.expect(t, clock+`! you are in 10 channels, the most allowed: leave one first$`)
	alice.expect(t, `^Still talking in #general\.$`)
	alice.send(t, "hello")
	if m := again.recv(t).GetSend(); m.GetText() != "hello" || m.GetChannel() != "general" {
		t.Errorf("chatctl sent %v, want hello to general", m)
	}
}

// A line waits for the server's answers to the lines before it, but not
// for ever: an answer that never comes (an older chatd, a bug) must not
// freeze the keyboard.
func TestLineNotHeldForAnAnswerThatNeverComes(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr)
	first := fake.next(t)
	first.welcome(t)
	alice.expect(t, clock+`\* you joined #general`)
	alice.send(t, "/join go", "hello")
	if req := first.recv(t); req.GetJoinChannel().GetChannel() != "go" {
		t.Fatalf("chatctl sent %v, want the join of go", req)
	}
	start := time.Now()
	if m := first.recv(t).GetSend(); m.GetText() != "hello" || m.GetChannel() != "go" {
		t.Errorf("chatctl sent %v, want hello to go", m)
	}
	if d := time.Since(start); d < answerWait/2 {
		t.Errorf("the line was sent %s after the unanswered join, want it held about %s", d, answerWait)
	}
}
