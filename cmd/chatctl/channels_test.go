package main

import (
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const clock = `^\d\d:\d\d:\d\d ` // the time that starts every event line

func TestJoinChannelsAndPrivateMessages(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr)
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
	alice.send(t, "before anyone", "/join #Go", "first in go")
	alice.expect(t, clock+`\* you joined #Go \(1 member\), your current channel$`)
	alice.expect(t, clock+`#Go alice: first in go$`)

	bob := startLive(t, t.Context(), "--name", "bob", "--server", ts.addr)
	bob.expect(t, clock+`\* you joined #general \(2 members\), your current channel$`)
	bob.expect(t, `^-- history of #general \(1 message\) --$`)
	bob.expect(t, clock+`\[history\] #general alice: before anyone$`)
	bob.expect(t, `^-- end of history --$`)
	carol := startLive(t, t.Context(), "--name", "carol", "--server", ts.addr)
	carol.expect(t, clock+`\* you joined #general \(3 members\)`)

	// History on joining a channel; typed lines go there at once.
	bob.send(t, "/join go", "bob in go")
	bob.expect(t, clock+`\* you joined #Go \(2 members\), your current channel$`)
	bob.expect(t, `^-- history of #Go \(1 message\) --$`)
	bob.expect(t, clock+`\[history\] #Go alice: first in go$`)
	bob.expect(t, `^-- end of history --$`)
	bob.expect(t, clock+`#Go bob: bob in go$`)
	alice.expect(t, clock+`\* bob joined #Go$`)
	alice.expect(t, clock+`#Go bob: bob in go$`)

	// Private messages reach the recipient and the sender only.
	carol.send(t, "/msg bob psst, bob")
	bob.expect(t, clock+`\[private\] carol -> bob: psst, bob$`)
	carol.expect(t, clock+`\[private\] carol -> bob: psst, bob$`)
	carol.send(t, "/msg nobody hello?")
	carol.expect(t, clock+`! .*nobody`)

	// /channels marks the session's channels.
	alice.send(t, "/channels")
	alice.expect(t, clock+`Channels \(2\):$`)
	alice.expect(t, `^  #general +3 members +\(joined\)$`) // by name, whatever the case
	alice.expect(t, `^  #Go +2 members +\(current\)$`)
	alice.send(t, "/who #go")
	alice.expect(t, `^#Go \(2\): alice \(you\), bob$`)

	// Back in general, a message reaches everyone; then everyone logs out,
	// and carol must have seen neither #Go's messages nor the private ones
	// of others.
	alice.send(t, "/switch #general", "back in general", "/leave #go")
	alice.expect(t, `^Talking in #general now\.$`)
	alice.expect(t, clock+`#general alice: back in general$`)
	alice.expect(t, clock+`\* you left #Go$`)
	bob.expect(t, clock+`\* alice left #Go$`)
	carol.expect(t, clock+`#general alice: back in general$`)
	for _, r := range []*liveRun{alice, bob, carol} {
		r.stdin.Close()
		if code := r.wait(t); code != exitOK {
			t.Errorf("%s: exit code %d, want 0\nstderr:\n%s", r.name, code, r.stderr)
		}
	}
	if out := carol.stdout.String(); strings.Contains(out, "#Go") || strings.Contains(out, "in go") {
		t.Errorf("carol, not in #Go, saw something of it:\n%s", out)
	}
	if out := alice.stdout.String(); strings.Contains(out, "psst") {
		t.Errorf("alice saw carol's private message to bob:\n%s", out)
	}
}

func TestSendToChannelAndPrivately(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr)
	alice.send(t, "/join go")
	alice.expect(t, clock+`\* you joined #go \(1 member\), your current channel$`)

	code, stdout, stderr := runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "--channel", "#go", "to go")
	if code != exitOK || !matches(clock+`#go bot: to go\n$`, stdout) {
		t.Errorf("send --channel: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	alice.expect(t, clock+`#go bot: to go$`)

	code, stdout, stderr = runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "--to", "alice", "psst")
	if code != exitOK || !matches(clock+`\[private\] bot -> alice: psst\n$`, stdout) {
		t.Errorf("send --to: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	alice.expect(t, clock+`\[private\] bot -> alice: psst$`)

	code, _, stderr = runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "--to", "nobody", "psst")
	if code != exitFailure || !strings.Contains(stderr, "chatctl: message not sent: ") {
		t.Errorf("send --to someone offline: exit code %d, stderr %q; want 1 and the server's reason", code, stderr)
	}
	code, _, stderr = runCLI(t, t.Context(), "", "send", "--name", "bot", "--server", ts.addr, "--channel", "no spaces", "hi")
	if code != exitFailure || !strings.Contains(stderr, "chatctl: cannot enter #no spaces: ") {
		t.Errorf("send --channel with a bad name: exit code %d, stderr %q; want 1 and the server's reason", code, stderr)
	}
	if got := ts.srv.Users(); len(got) != 1 {
		t.Errorf("send left users online: %v", got)
	}
}

func TestChannelsCommand(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr)
	alice.send(t, "/join rust")
	alice.expect(t, clock+`\* you joined #rust`)

	code, stdout, stderr := runCLI(t, t.Context(), "", "channels", "--server", ts.addr)
	if code != exitOK || !matches(`^CHANNEL +MEMBERS\n#general +1\n#rust +1\n$`, stdout) {
		t.Errorf("channels: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, t.Context(), "", "channels", "--server", ts.addr, "-o", "json")
	resp := &chatv1.ListChannelsResponse{}
	if err := protojson.Unmarshal([]byte(stdout), resp); err != nil || code != exitOK {
		t.Fatalf("channels -o json: exit code %d, %q: %v", code, stdout, err)
	}
	var got []string
	for _, c := range resp.GetChannels() {
		got = append(got, c.GetName())
	}
	if strings.Join(got, ",") != "general,rust" {
		t.Errorf("channels -o json listed %v, want general and rust", got)
	}
}
