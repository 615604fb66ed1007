package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/netproxy"
	"google.golang.org/protobuf/encoding/protojson"
)

// startChatdArgs is startChatd with more flags for chatd.
func startChatdArgs(t *testing.T, flags ...string) *chatd {
	t.Helper()
	p := start(t, chatdBin, append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", t.TempDir()}, flags...)...)
	t.Cleanup(func() { p.terminate(t) })
	line := p.expect(t, `^chatd: gRPC listening on `)
	return &chatd{proc: p, addr: strings.TrimPrefix(line, "chatd: gRPC listening on ")}
}

// endInput ends each session with the end of its input and checks that it
// exits 0.
func endInput(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		p.stdin.Close()
		if code := p.wait(t); code != exitOK {
			t.Errorf("%s: exit code %d at the end of input, want 0\nstderr:\n%s", p.name, code, p.stderr)
		}
	}
}

func TestChatctlChannelsHistoryAndPrivateMessages(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
	alice.send(t, "/join #go", "first in go")
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	alice.expect(t, clock+`#go alice: first in go$`)

	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.expect(t, clock+`\* you joined #general \(2 members\), your current channel$`)
	carol := chatctl(t, "join", "--name", "carol", "--server", srv.addr)
	carol.expect(t, clock+`\* you joined #general \(3 members\), your current channel$`)

	// Joining shows the channel's history, then its live messages.
	bob.send(t, "/join go")
	bob.expect(t, clock+`\* you joined #go \(2 members\), your current channel$`)
	bob.expect(t, `^-- history of #go \(1 message\) --$`)
	bob.expect(t, clock+`\[history\] #go alice: first in go$`)
	bob.expect(t, `^-- end of history --$`)
	alice.expect(t, clock+`\* bob joined #go$`)
	alice.send(t, "only for go")
	bob.expect(t, clock+`#go alice: only for go$`)

	// A private message reaches its recipient and its sender only.
	alice.send(t, "/msg bob a secret")
	bob.expect(t, clock+`\[private\] alice -> bob: a secret$`)
	alice.expect(t, clock+`\[private\] alice -> bob: a secret$`)

	alice.send(t, "/channels")
	alice.expect(t, clock+`Channels \(2\):$`)
	alice.expect(t, `^  #general +3 members +\(joined\)$`)
	alice.expect(t, `^  #go +2 members +\(current\)$`)

	// A message to general reaches carol too: she has been listening all
	// along, and saw neither #go nor the private message.
	alice.send(t, "/switch #general", "to everyone")
	carol.expect(t, clock+`#general alice: to everyone$`)
	bob.expect(t, clock+`#general alice: to everyone$`)
	endInput(t, alice, bob, carol)
	for _, leak := range []string{"first in go", "only for go", "a secret", "#go"} {
		if strings.Contains(carol.stdout.String(), leak) {
			t.Errorf("carol saw %q:\n%s", leak, carol.stdout)
		}
	}
}

func TestChatctlSendToChannelAndUser(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.send(t, "/join rust")
	alice.expect(t, clock+`\* you joined #rust \(1 member\), your current channel$`)

	code, stdout, stderr := runChatctl(t, "", "send", "--name", "bot", "--server", srv.addr, "--channel", "rust", "to rust")
	if code != exitOK || !matches(clock+`#rust bot: to rust\n$`, stdout) {
		t.Errorf("send --channel: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	alice.expect(t, clock+`#rust bot: to rust$`)
	code, stdout, stderr = runChatctl(t, "", "send", "--name", "bot", "--server", srv.addr, "--to", "alice", "hi alice")
	if code != exitOK || !matches(clock+`\[private\] bot -> alice: hi alice\n$`, stdout) {
		t.Errorf("send --to: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	alice.expect(t, clock+`\[private\] bot -> alice: hi alice$`)

	code, stdout, stderr = runChatctl(t, "", "channels", "--server", srv.addr)
	if code != exitOK || !matches(`^CHANNEL +MEMBERS\n#general +1\n#rust +1\n$`, stdout) {
		t.Errorf("channels: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runChatctl(t, "", "channels", "--server", srv.addr, "-o", "json")
	resp := &chatv1.ListChannelsResponse{}
	if err := protojson.Unmarshal([]byte(stdout), resp); err != nil || code != exitOK || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("channels -o json: exit code %d, stdout %q, stderr %q: %v", code, stdout, stderr, err)
	}
	if len(resp.GetChannels()) != 2 || resp.GetChannels()[1].GetName() != "rust" || resp.GetChannels()[1].GetMemberCount() != 1 {
		t.Errorf("channels -o json listed %v, want general and rust with 1 member each", resp.GetChannels())
	}
}

// chatctlProxy starts a proxy to srv whose connections the test can cut.
func chatctlProxy(t *testing.T, srv *chatd) *netproxy.Proxy {
	t.Helper()
	p, err := netproxy.New(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// cutNetwork breaks every connection through p and keeps new ones out
// until the test calls p.Refuse(false): a network outage.
func cutNetwork(t *testing.T, p *netproxy.Proxy) {
	t.Helper()
	p.Refuse(true)
	if n := p.CloseConns(); n == 0 {
		t.Fatal("no connection to cut")
	}
}

func TestChatctlReconnectsWithNothingMissed(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	proxy := chatctlProxy(t, srv)
	alice := chatctl(t, "join", "--name", "alice", "--server", proxy.Addr())
	alice.send(t, "/join go")
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.send(t, "/join go")
	alice.expect(t, clock+`\* bob joined #go$`)

	cutNetwork(t, proxy)
	alice.expect(t, `^chatctl: connection lost \(.+\); reconnecting for up to 30s\.\.\.$`)
	bob.expect(t, clock+`\* alice left \(disconnected\)$`)
	bob.send(t, "while you were away")
	bob.expect(t, clock+`#go bob: while you were away$`) // chatd has it
	alice.send(t, "typed while away")
	alice.expect(t, `^Not connected: this will be sent once reconnected\.$`)

	proxy.Refuse(false)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.expect(t, clock+`#go bob: while you were away$`)
	alice.expect(t, clock+`#go alice: typed while away$`)
	bob.expect(t, clock+`\* alice reconnected$`)
	bob.expect(t, clock+`#go alice: typed while away$`)
	endInput(t, alice, bob)
	if s := alice.stderr.String(); s != "" {
		t.Errorf("alice's stderr %q, want nothing", s)
	}
}

func TestChatctlReconnectsAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	srv := startChatdArgs(t, "--resume-grace", grace.String())
	proxy := chatctlProxy(t, srv)
	alice := chatctl(t, "join", "--name", "alice", "--server", proxy.Addr())
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	alice.expect(t, clock+`\* bob joined$`)

	cutNetwork(t, proxy)
	alice.expect(t, `^chatctl: connection lost`)
	bob.expect(t, clock+`\* alice left \(disconnected\)$`)
	bob.send(t, "gone too long")
	bob.expect(t, clock+`#general bob: gone too long$`)
	time.Sleep(3 * grace) // alice's session expires
	proxy.Refuse(false)

	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`Online \(2\): bob, alice \(you\)$`)
	alice.expect(t, clock+`\* you joined #general \(2 members\), your current channel$`)
	alice.expect(t, clock+`\[history\] #general bob: gone too long$`)
	alice.expect(t, `^-- end of history --$`)
	bob.expect(t, clock+`\* alice joined$`) // a new session, not a resumed one
	endInput(t, alice, bob)
}

// /history scrolls back past what joining a channel shows: the last N
// messages of the current channel, of another, or the private ones with
// someone, each marked as history.
func TestChatctlHistory(t *testing.T) {
	t.Parallel()
	srv := startChatdArgs(t, "--history-size", "2", "--message-rate", "0")
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
	for i := range 6 {
		alice.send(t, fmt.Sprint("line ", i))
		alice.expect(t, clock+fmt.Sprintf(`#general alice: line %d$`, i))
	}
	alice.send(t, "/msg bob psst")
	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.expect(t, `^-- history of #general \(2 messages\) --$`)
	bob.expect(t, `^-- end of history --$`)
	alice.send(t, "/msg bob psst")
	bob.expect(t, clock+`\[private\] alice -> bob: psst$`)

	bob.send(t, "/history 4")
	bob.expect(t, `^-- the last 4 messages of #general --$`)
	for i := 2; i < 6; i++ {
		bob.expect(t, clock+fmt.Sprintf(`\[history\] #general alice: line %d$`, i))
	}
	bob.expect(t, `^-- end of history --$`)
	bob.send(t, "/history alice")
	bob.expect(t, `^-- the last 1 message of your messages with alice --$`)
	bob.expect(t, clock+`\[history\] \[private\] alice -> bob: psst$`)
	bob.send(t, "/history #nowhere")
	bob.expect(t, `^cannot show the history: there is no channel #nowhere$`)
	endInput(t, alice, bob)
}
