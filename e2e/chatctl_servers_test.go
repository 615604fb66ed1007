package e2e_test

import (
	"regexp"
	"strings"
	"testing"
)

// chatctl given several servers uses the first that answers, whatever the
// order it tries them in, and says so when it moves on from a dead one.
func TestChatctlSkipsUnreachableServer(t *testing.T) {
	t.Parallel()
	live := startChatd(t)
	dead := freeAddrs(t, 1)[0] // nothing listens there
	list := dead + "," + live.addr
	note := "chatctl: cannot reach chatd at " + dead + ": connection refused (is it running?); trying " + live.addr + "...\n"
	for _, tt := range []struct {
		stdin string
		args  []string
		want  []string // in stdout, as regexps
	}{
		{"", []string{"who"}, []string{`(?m)^Nobody is online\.$`}},
		{"", []string{"send", "--name", "bot", "hi"}, []string{`(?m)` + clock + `#general bot: hi$`}},
		{"hello\n", []string{"join", "--name", "alice"}, []string{
			`(?m)^chatctl: connected to ` + regexp.QuoteMeta(live.addr) + `$`,
			`(?m)` + clock + `#general alice: hello$`,
		}},
	} {
		code, stdout, stderr := runChatctl(t, tt.stdin, append(tt.args, "--server", list)...)
		if code != exitOK {
			t.Errorf("chatctl %s: exit code %d, want 0; stderr:\n%s", tt.args[0], code, stderr)
		}
		for _, want := range tt.want {
			if !matches(want, stdout) {
				t.Errorf("chatctl %s: stdout does not match %s:\n%s", tt.args[0], want, stdout)
			}
		}
		if stderr != "" && stderr != note {
			t.Errorf("chatctl %s: stderr %q, want nothing or %q", tt.args[0], stderr, note)
		}
	}
}

// A rolling restart, as far as two chatd that share nothing can play it:
// the chatd a session is on shuts down (SIGTERM), and chatctl moves to the
// other, resumes there with its token (which that chatd does not know, so
// it starts the session afresh), enters its channels again, and goes on
// sending and receiving.
func TestChatctlMovesToAnotherChatdOnShutdown(t *testing.T) {
	t.Parallel()
	a, b := startChatd(t), startChatd(t)
	byAddr := map[string]*chatd{a.addr: a, b.addr: b}
	alice := chatctl(t, "join", "--name", "alice", "--server", a.addr+","+b.addr)
	here := byAddr[strings.TrimPrefix(alice.expect(t, `^chatctl: connected to `), "chatctl: connected to ")]
	if here == nil {
		t.Fatalf("alice connected to none of %s, %s:\n%s", a.addr, b.addr, alice.stdout)
	}
	there := a
	if here == a {
		there = b
	}
	alice.expect(t, clock+`\* you joined as alice$`)
	alice.send(t, "/join ops")
	alice.expect(t, clock+`\* you joined #ops \(1 member\), your current channel$`)
	bob := chatctl(t, "join", "--name", "bob", "--server", there.addr)
	bob.expect(t, clock+`\* you joined as bob$`)

	here.terminate(t)
	alice.expect(t, `^chatctl: connection to `+regexp.QuoteMeta(here.addr)+` lost \(server shutting down.*\); reconnecting for up to 30s, trying `+regexp.QuoteMeta(there.addr)+` first\.\.\.$`)
	alice.expect(t, `^chatctl: connected to `+regexp.QuoteMeta(there.addr)+`$`)
	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.expect(t, clock+`Online \(2\): bob, alice \(you\)$`)
	alice.expect(t, clock+`\* you joined #general \(2 members\)$`)
	alice.expect(t, clock+`\* you joined #ops \(1 member\), your current channel$`)
	bob.expect(t, clock+`\* alice joined$`)

	alice.send(t, "/switch general", "hello bob, from the other chatd")
	bob.expect(t, clock+`#general alice: hello bob, from the other chatd$`)
	bob.send(t, "hi alice")
	alice.expect(t, clock+`#general bob: hi alice$`)
	endInput(t, alice, bob)
	if s := alice.stderr.String(); s != "" {
		t.Errorf("alice's stderr %q, want nothing", s)
	}
}
