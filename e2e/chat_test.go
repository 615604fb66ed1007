package e2e_test

import (
	"os"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// The exit codes chatctl documents.
const (
	exitOK          = 0
	exitUsage       = 2
	exitUnreachable = 3
	exitNameTaken   = 4
	exitInvalidName = 5
	exitConnLost    = 6
	exitSignIn      = 8
)

const clock = `^\d\d:\d\d:\d\d ` // the time that starts every event line

func TestTwoUsersChat(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, clock+`\* you joined as alice$`)
	alice.expect(t, clock+`Online \(1\): alice \(you\)$`)

	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.expect(t, clock+`Online \(2\): alice, bob \(you\)$`)
	alice.expect(t, clock+`\* bob joined$`)

	alice.send(t, "hello bob")
	bob.expect(t, clock+`#general alice: hello bob$`)
	alice.expect(t, clock+`#general alice: hello bob$`) // the echo is alice's acknowledgement
	bob.send(t, "hi alice, \x1b[2Jcleared?")
	alice.expect(t, clock+`#general bob: hi alice, \\x1b\[2Jcleared\?$`)

	alice.send(t, "/who")
	alice.expect(t, `^Online \(2\): alice \(you\), bob$`)

	bob.send(t, "/quit")
	bob.expect(t, clock+`\* bob left \(logged out\)$`)
	if code := bob.wait(t); code != exitOK {
		t.Errorf("bob: exit code %d after /quit, want 0\nstderr:\n%s", code, bob.stderr)
	}
	alice.expect(t, clock+`\* bob left \(logged out\)$`)
	alice.send(t, "/who")
	alice.expect(t, `^Online \(1\): alice \(you\)$`)

	alice.stdin.Close() // end of input: a logout
	alice.expect(t, clock+`\* alice left \(logged out\)$`)
	if code := alice.wait(t); code != exitOK {
		t.Errorf("alice: exit code %d at the end of input, want 0\nstderr:\n%s", code, alice.stderr)
	}
}

func TestJoinRefused(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, `\* you joined as alice$`)

	tests := []struct {
		name string
		code int
		want string
	}{
		{"Alice", exitNameTaken, `chatctl: cannot join: username "Alice" is taken: choose another name`},
		{"a b", exitInvalidName, "chatctl: cannot join: invalid username: "},
	}
	for _, tt := range tests {
		code, stdout, stderr := runChatctl(t, "", "join", "--name", tt.name, "--server", srv.addr)
		if code != tt.code {
			t.Errorf("join as %q: exit code %d, want %d", tt.name, code, tt.code)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("join as %q: stderr %q does not say %q", tt.name, stderr, tt.want)
		}
		if stdout != "" {
			t.Errorf("join as %q: stdout %q, want nothing", tt.name, stdout)
		}
	}
}

func TestJoinFromPipe(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	code, stdout, stderr := runChatctl(t, "hi\n", "join", "--name", "bot", "--server", srv.addr)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0\nstderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []string{`\* you joined as bot$`, `Online \(1\): bot \(you\)$`, `\* you joined #general \(1 member\), your current channel$`, `#general bot: hi$`, `\* bot left \(logged out\)$`}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if !matches(clock+w, lines[i]) {
			t.Errorf("line %d is %q, want it to match %q", i+1, lines[i], clock+w)
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, `\* you joined as alice$`)

	code, stdout, stderr := runChatctl(t, "", "send", "--name", "bot", "--server", srv.addr, "hello from bot")
	if code != exitOK {
		t.Fatalf("send: exit code %d, want 0\nstderr:\n%s", code, stderr)
	}
	if !matches(clock+`#general bot: hello from bot\n$`, stdout) {
		t.Errorf("send printed %q, want the delivered message", stdout)
	}
	alice.expect(t, clock+`\* bot joined$`)
	alice.expect(t, clock+`#general bot: hello from bot$`)
	alice.expect(t, clock+`\* bot left \(logged out\)$`)
}

func TestWho(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	for _, name := range []string{"alice", "bob"} {
		p := chatctl(t, "join", "--name", name, "--server", srv.addr)
		p.expect(t, `\* you joined as `+name+`$`)
	}

	code, stdout, stderr := runChatctl(t, "", "who", "--server", srv.addr)
	if code != exitOK {
		t.Fatalf("who: exit code %d\nstderr:\n%s", code, stderr)
	}
	if !matches(`^NAME +JOINED\nalice +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\nbob +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$`, stdout) {
		t.Errorf("who printed\n%s\nwant alice and bob with their join times", stdout)
	}

	code, stdout, stderr = runChatctl(t, "", "who", "--server", srv.addr, "-o", "json")
	if code != exitOK {
		t.Fatalf("who -o json: exit code %d\nstderr:\n%s", code, stderr)
	}
	resp := &chatv1.ListUsersResponse{}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("who -o json printed %q, want one line", stdout)
	}
	if err := protojson.Unmarshal([]byte(stdout), resp); err != nil {
		t.Fatalf("who -o json printed %q: %v", stdout, err)
	}
	var names []string
	for _, u := range resp.GetUsers() {
		if u.GetJoinTime() == nil {
			t.Errorf("user %q has no join time", u.GetUsername())
		}
		names = append(names, u.GetUsername())
	}
	if got := strings.Join(names, ","); got != "alice,bob" {
		t.Errorf("who -o json listed %s, want alice,bob", got)
	}

	// join -o json prints every response as one protojson line.
	code, stdout, stderr = runChatctl(t, "two\\nlines\n", "join", "--name", "carol", "--server", srv.addr, "--output", "json")
	if code != exitOK {
		t.Fatalf("join -o json: exit code %d\nstderr:\n%s", code, stderr)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		ev := &chatv1.ChatResponse{}
		if err := protojson.Unmarshal([]byte(line), ev); err != nil {
			t.Fatalf("join -o json line %q: %v", line, err)
		}
		switch {
		case ev.GetWelcome() != nil:
			kinds = append(kinds, "welcome")
		case ev.GetMessage() != nil:
			kinds = append(kinds, "message:"+ev.GetMessage().GetText())
		case ev.GetUserLeft() != nil:
			kinds = append(kinds, "left:"+ev.GetUserLeft().GetReason().String())
		}
	}
	if got, want := strings.Join(kinds, " "), `welcome message:two\nlines left:LEAVE_REASON_LOGOUT`; got != want {
		t.Errorf("join -o json printed %s, want %s", got, want)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := freeAddrs(t, 1)[0] // a port nobody listens on, nor will

	// The connection is refused at once: chatctl says so at once, well
	// within a --dial-timeout it would once have waited out.
	flags := []string{"--server", addr, "--dial-timeout", "30s"}
	for _, args := range [][]string{
		append([]string{"who"}, flags...),
		append([]string{"join", "--name", "alice"}, flags...),
		append(append([]string{"send", "--name", "alice"}, flags...), "hi"),
	} {
		start := time.Now()
		code, _, stderr := runChatctl(t, "", args...)
		elapsed := time.Since(start)
		if code != exitUnreachable {
			t.Errorf("%s: exit code %d, want %d", args[0], code, exitUnreachable)
		}
		if want := "chatctl: cannot reach chatd at " + addr + ": connection refused (is it running?)\n"; stderr != want {
			t.Errorf("%s: stderr %q, want %q", args[0], stderr, want)
		}
		if elapsed > 10*time.Second {
			t.Errorf("%s: gave up after %s, want well within --dial-timeout 30s", args[0], elapsed)
		}
	}

	// An address that is not host:port is bad usage, before any wait.
	code, _, stderr := runChatctl(t, "", "who", "--server", "localhost")
	if want := "chatctl: who: bad --server \"localhost\": it has no port; want host:port, e.g. --server localhost:50051\n"; code != exitUsage || stderr != want {
		t.Errorf("who --server localhost: exit code %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

func TestConnectionLost(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr, "--reconnect-timeout", "1s")
	alice.expect(t, `\* you joined as alice$`)

	srv.terminate(t) // and it does not come back within 1s
	if code := alice.wait(t); code != exitConnLost {
		t.Errorf("exit code %d when chatd stopped, want %d", code, exitConnLost)
	}
	alice.expectIn(t, alice.stderr, "stderr", `^chatctl: connection lost: server shutting down`)
}

func TestGrpcurl(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)

	// The first run may build grpcurl.
	code, stdout, stderr := goTool(t, 5*time.Minute, "grpcurl", "-plaintext", srv.addr, "list")
	if code != 0 {
		t.Fatalf("grpcurl list: exit code %d\n%s", code, stderr)
	}
	for _, svc := range []string{"chat.v1.ChatService", "grpc.health.v1.Health"} {
		if !strings.Contains(stdout, svc+"\n") {
			t.Errorf("grpcurl list does not list %s:\n%s", svc, stdout)
		}
	}

	code, stdout, stderr = goTool(t, time.Minute, "grpcurl", "-plaintext", srv.addr, "describe", "chat.v1.ChatService")
	if code != 0 || !strings.Contains(stdout, "rpc Chat (") {
		t.Errorf("grpcurl describe: exit code %d, want 0 and rpc Chat\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	code, stdout, stderr = goTool(t, time.Minute, "grpcurl", "-plaintext",
		"-d", `{"join":{"username":"probe"}} {"client_id":"c1","send":{"text":"hello"}}`,
		srv.addr, "chat.v1.ChatService/Chat")
	if code != 0 {
		t.Fatalf("grpcurl Chat: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{`"welcome":`, `"username": "probe"`, `"text": "hello"`, `"clientId": "c1"`, `"reason": "LEAVE_REASON_LOGOUT"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("grpcurl Chat output does not contain %s:\n%s", want, stdout)
		}
	}
}

func TestInterrupt(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, `\* you joined as alice$`)
	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.expect(t, `\* you joined as bob$`)

	// Ctrl-C is a logout, not a disconnect: the others see why bob left.
	if err := bob.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := bob.wait(t); code != exitOK {
		t.Errorf("exit code %d after SIGINT, want 0\nstderr:\n%s", code, bob.stderr)
	}
	alice.expect(t, clock+`\* bob left \(logged out\)$`)
}
