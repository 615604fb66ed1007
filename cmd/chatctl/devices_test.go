package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// firstDevice joins name on addr as a Go client and returns its device
// key, for chatctl to join as another device of the same user.
func firstDevice(t *testing.T, addr, name string) (*chatclient.Client, string) {
	t.Helper()
	c, err := chatclient.Connect(t.Context(), chatclient.Config{Servers: []string{addr}}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.DeviceKey()
}

// --device-key joins as another device of a user who is in the chat: both
// get what is sent to the user. A key that is not the user's is refused
// as the name taken, and chatctl says the key was not taken. In a pipe
// the device key is not printed: it is a secret, and nobody is looking.
func TestDeviceKeyJoinsAsAnotherDevice(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	first, key := firstDevice(t, ts.addr, "alice")

	code, _, stderr := runCLI(t, t.Context(), "", "join", "--name", "alice", "--server", ts.addr, "--device-key", "not-the-key")
	if code != exitNameTaken || !strings.Contains(stderr, `is taken`) || !strings.Contains(stderr, "the device key from --device-key is not this user's") {
		t.Errorf("join with a wrong key: exit code %d, stderr %q; want %d, saying the key was not alice's", code, stderr, exitNameTaken)
	}

	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr, "--device-key", key)
	alice.expect(t, clock+`\* you joined as alice$`)
	alice.expect(t, clock+`Online \(1\): alice \(you\)$`)
	alice.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)
	if err := first.SendText("general", "from the first device", ""); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, clock+`#general alice: from the first device$`)
	alice.send(t, "/quit")
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	if out := alice.stdout.String(); strings.Contains(out, key) || strings.Contains(out, "another device") {
		t.Errorf("in a pipe chatctl printed the device key, or how to use it:\n%s", out)
	}

	// send is a device of the user too, for one message.
	code, stdout, stderr := runCLI(t, t.Context(), "", "send", "--name", "alice", "--server", ts.addr, "--device-key", key, "sent by a script")
	if code != exitOK || !matches(clock+`#general alice: sent by a script\n$`, stdout) {
		t.Errorf("send --device-key: exit code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// The device key comes from CHATD_DEVICE_KEY when no flag gives one. Not
// parallel: it sets the environment.
func TestDeviceKeyFromEnvironment(t *testing.T) {
	ts := startServer(t)
	_, key := firstDevice(t, ts.addr, "alice")
	t.Setenv(deviceKeyEnv, key)
	if code, stdout, stderr := runCLI(t, t.Context(), "/quit\n", "join", "--name", "alice", "--server", ts.addr); code != exitOK || !matches(`(?m)`+clock+`\* you joined as alice$`, stdout) {
		t.Errorf("join with $%s: exit code %d, stdout %q, stderr %q", deviceKeyEnv, code, stdout, stderr)
	}
	t.Setenv(deviceKeyEnv, "garbage")
	code, _, stderr := runCLI(t, t.Context(), "", "send", "--name", "alice", "--server", ts.addr, "hi")
	if code != exitNameTaken || !strings.Contains(stderr, "the device key from $"+deviceKeyEnv+" is not this user's") {
		t.Errorf("send with a wrong $%s: exit code %d, stderr %q; want %d, naming where the key came from", deviceKeyEnv, code, stderr, exitNameTaken)
	}
}

// A resume sends the device key with the token: should the session have
// expired meanwhile, the join is another device of the user again, not
// refused the name the user's other devices hold.
func TestResumeSendsTheDeviceKey(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr, "--device-key", "K", "--reconnect-timeout", "10s")
	first := fake.next(t)
	if j := first.recv(t).GetJoin(); j.GetUsername() != "alice" || j.GetDeviceKey() != "K" {
		t.Fatalf("first request %v, want a join of alice with device key K", j)
	}
	first.send(t, 1, welcomeEv("alice", "alice"))
	first.send(t, 2, channelJoinedEv("general", "alice", 0, "alice"))
	alice.expect(t, clock+`\* you joined #general`)
	first.end <- status.Error(codes.Unavailable, "connection lost")

	again := fake.next(t)
	if j := again.recv(t).GetJoin(); j.GetResumeToken() != "tok" || j.GetLastSeq() != 2 || j.GetDeviceKey() != "K" {
		t.Fatalf("resume %v, want the token tok, last_seq 2 and device key K", j)
	}
}

// On a terminal, chatctl says once how to join from another device: the
// command, with the key in the environment. Again only if a welcome
// brings another key (a restarted chatd forgot the old one); never the
// one the session was given.
func TestOtherDeviceHintShownOnce(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.s.showDeviceKey, st.s.joinFlags = true, " --server chat.example:50051"
	w := welcomeEv("alice", "alice")
	w.GetWelcome().DeviceKey = "Kx_1-y"
	st.feed(false, w)
	want := "To join as alice from another device: CHATD_DEVICE_KEY=Kx_1-y chatctl join --name alice --server chat.example:50051\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("after the welcome printed\n%s\nwant it to end with\n%s", got, want)
	}
	if st.s.deviceKey != "Kx_1-y" {
		t.Errorf("the session keeps device key %q for its resumes, want the welcome's", st.s.deviceKey)
	}

	back := welcomeEv("alice")
	back.Seq = st.seq
	back.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_COMPLETE
	back.GetWelcome().DeviceKey = "Kx_1-y"
	st.feed(false, back)
	if got := st.printed(); strings.Contains(got, "another device") {
		t.Errorf("a reconnection with the same key printed the hint again:\n%s", got)
	}

	fresh := welcomeEv("alice", "alice")
	fresh.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	fresh.GetWelcome().ResumeToken = "tok2"
	fresh.GetWelcome().DeviceKey = "K2"
	st.feed(false, fresh)
	if got := st.printed(); !strings.Contains(got, "CHATD_DEVICE_KEY=K2 chatctl join") {
		t.Errorf("a new key was not shown:\n%s", got)
	}

	given := newStateTest(t)
	given.s.showDeviceKey, given.s.keyShown = true, "K"
	w = welcomeEv("alice", "alice")
	w.GetWelcome().DeviceKey = "K"
	given.feed(false, w)
	if got := given.printed(); strings.Contains(got, "another device") {
		t.Errorf("the key the session was given was shown back:\n%s", got)
	}
}

// The hint is a line to paste into a shell: what comes from the server is
// quoted for the shell and escaped for the terminal.
func TestOtherDeviceHintQuotes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ you, key, flags, want string }{
		{"alice", "abc", "", "To join as alice from another device: CHATD_DEVICE_KEY=abc chatctl join --name alice"},
		{"o'hara", "abc", " --tls", `To join as o'hara from another device: CHATD_DEVICE_KEY=abc chatctl join --name 'o'\''hara' --tls`},
		{"$(rm)", "a b", "", `To join as $(rm) from another device: CHATD_DEVICE_KEY='a b' chatctl join --name '$(rm)'`},
		{"evil\x1b[2J", "k", "", `To join as evil\x1b[2J from another device: CHATD_DEVICE_KEY=k chatctl join --name 'evil\x1b[2J'`},
	} {
		if got := otherDeviceHint(tt.you, tt.key, tt.flags); got != tt.want {
			t.Errorf("otherDeviceHint(%q, %q, %q) =\n%s\nwant\n%s", tt.you, tt.key, tt.flags, got, tt.want)
		}
	}
	opts := &options{}
	if got := joinFlags(opts); got != "" {
		t.Errorf("joinFlags without --server = %q, want none", got)
	}
	opts.server.given = []string{"a:1,b:2"}
	opts.security.tls = true
	if got, want := joinFlags(opts), " --server a:1,b:2 --tls"; got != want {
		t.Errorf("joinFlags = %q, want %q", got, want)
	}
}

// A resume that finds the session expired is a device of its user again
// on a real chatd: chatctl carries on, afresh.
func TestDeviceComesBackAfterItsSessionExpired(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.ResumeGrace = 200 * time.Millisecond
	ts := startServerWith(t, cfg)
	first, key := firstDevice(t, ts.addr, "alice")
	proxy := breakable(t, ts.addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", proxy.Addr(), "--device-key", key, "--reconnect-timeout", "20s")
	alice.expect(t, clock+`\* you joined #general`)
	cut(t, proxy)
	alice.expect(t, `^chatctl: connection lost`)
	time.Sleep(5 * cfg.ResumeGrace) // the session expires; the first device holds the name
	proxy.Refuse(false)
	alice.expect(t, clock+`\* reconnected, but some events were lost: state rebuilt$`)
	alice.send(t, "back")
	alice.expect(t, clock+`#general alice: back$`)
	if err := first.SendText("general", "seen", ""); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, clock+`#general alice: seen$`)
}
