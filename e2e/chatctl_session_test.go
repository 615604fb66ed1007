package e2e_test

import (
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
