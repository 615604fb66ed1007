package e2e_test

import (
	"fmt"
	"strings"
	"testing"
)

// A /join of a name chatd would refuse says what is wrong with it and
// shows a name that would do, instead of a bare usage line.
func TestChatctlJoinExplainsBadChannelName(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	code, stdout, stderr := runChatctl(t, "/join #bad name\n/join #a/b\n/join #bad-name\n", "join", "--name", "alice", "--server", srv.addr)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		`(?m)^cannot join "#bad name": spaces are not allowed in a channel name \(a channel name is 1 to 32 letters, digits, "-", "_" or "\.", with one leading "#" ignored\); for example: /join #bad-name$`,
		`(?m)^cannot join "#a/b": '/' is not allowed in a channel name \(.*\); for example: /join #a-b$`,
		`(?m)^\d\d:\d\d:\d\d \* you joined #bad-name \(1 member\), your current channel$`,
	} {
		if !matches(want, stdout) {
			t.Errorf("stdout does not match %s:\n%s", want, stdout)
		}
	}
}

// A restarted chatd forgets every channel: chatctl enters again the ones
// the user was in, stays in the current one, and sends there what was
// typed during the outage.
func TestChatctlRejoinsChannelsAfterChatdRestarts(t *testing.T) {
	t.Parallel()
	addr := freeAddrs(t, 1)[0] // chatd comes back on the same port
	srv := startChatdArgs(t, "--grpc-addr", addr)
	alice := chatctl(t, "join", "--name", "alice", "--server", addr)
	alice.send(t, "/join ops")
	alice.expect(t, clock+`\* you joined #ops \(1 member\), your current channel$`)

	srv.terminate(t)
	alice.expect(t, `^chatctl: connection lost \(server shutting down.*\); reconnecting for up to 30s\.\.\.$`)
	alice.send(t, "typed during the outage")
	alice.expect(t, `^Not connected: this will be sent once reconnected\.$`)

	startChatdArgs(t, "--grpc-addr", addr)
	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`\* you joined #general \(1 member\)$`)
	alice.expect(t, clock+`\* you joined #ops \(1 member\), your current channel$`)
	alice.expect(t, clock+`#ops alice: typed during the outage$`)
	alice.send(t, "and after it")
	alice.expect(t, clock+`#ops alice: and after it$`)
	endInput(t, alice)
}

// If the restarted chatd refuses to let the session back into its current
// channel, chatctl says so and where lines go now, and what was typed for
// that channel is reported as not sent rather than sent elsewhere.
func TestChatctlSaysWhenARejoinIsRefused(t *testing.T) {
	t.Parallel()
	addr := freeAddrs(t, 1)[0]
	srv := startChatdArgs(t, "--grpc-addr", addr)
	alice := chatctl(t, "join", "--name", "alice", "--server", addr)
	alice.send(t, "/join ops")
	alice.expect(t, clock+`\* you joined #ops \(1 member\), your current channel$`)

	srv.terminate(t)
	alice.expect(t, `^chatctl: connection lost`)
	alice.send(t, "typed during the outage")
	alice.expect(t, `^Not connected: this will be sent once reconnected\.$`)

	startChatdArgs(t, "--grpc-addr", addr, "--max-channels-per-user", "1") // general only
	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`! .+$`)
	alice.expect(t, `^Could not get back into #ops: talking in #general now\.$`)
	alice.expect(t, clock+`! .+$`)
	alice.expect(t, `^Not sent: "typed during the outage"$`)
	alice.send(t, "and after it")
	alice.expect(t, clock+`#general alice: and after it$`)
	endInput(t, alice)
	if out := alice.stdout.String(); matches(`alice: typed during the outage`, out) {
		t.Errorf("the line typed for #ops was delivered somewhere else:\n%s", out)
	}
}

// In a pipe, chatctl's own answers come in one order with what chatd sends:
// each line is handled once chatd has answered the lines before it, so an
// answer never lands inside a history block, and /who of a channel just
// joined knows its members.
func TestChatctlPipeKeepsOneOrder(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	var history strings.Builder
	for i := range 15 {
		fmt.Fprintf(&history, "old message %d\n", i)
	}
	if code, _, stderr := runChatctl(t, history.String(), "join", "--name", "alice", "--server", srv.addr); code != exitOK {
		t.Fatalf("alice: exit code %d\n%s", code, stderr)
	}

	code, stdout, stderr := runChatctl(t, "/who\n/help\n/join #go\n/who #go\nhi go\n/nope\n", "join", "--name", "bob", "--server", srv.addr)
	if code != exitOK {
		t.Fatalf("bob: exit code %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	at := -1
	for _, want := range []string{
		clock + `\* you joined as bob$`,
		clock + `\* you joined #general \(1 member\), your current channel$`,
		`^-- history of #general \(15 messages\) --$`,
		clock + `\[history\] #general alice: old message 14$`,
		`^-- end of history --$`,
		`^Online \(1\): bob \(you\)$`,
		`^Type a line and press Enter`,
		`^  //text `,
		clock + `\* you joined #go \(1 member\), your current channel$`,
		`^#go \(1\): bob \(you\)$`,
		clock + `#go bob: hi go$`,
		`^unknown command /nope`,
		clock + `\* bob left \(logged out\)$`,
	} {
		i := at + 1
		for i < len(lines) && !matches(want, lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("no line matching %s after line %d:\n%s", want, at+1, stdout)
		}
		at = i
	}
	if at != len(lines)-1 {
		t.Errorf("lines after the logout:\n%s", stdout)
	}
}
