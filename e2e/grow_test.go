package e2e_test

import (
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// seedCluster runs chatd --seed-from dir against nats and returns its exit
// code and output.
func seedCluster(t *testing.T, nats *natsProc, dir string) (int, *proc) {
	t.Helper()
	// The nodes' settings, as startNode gives them: the cluster is made
	// with them.
	p := start(t, chatdBin, "--nats-url", nats.url(), "--seed-from", dir, "--node-timeout", nodeTimeout.String())
	return p.wait(t), p
}

// A chatd of its own grows into a cluster of three without losing its
// chat: its channels, what was said in them and the sessions of those who
// were there carry on, on any node. Seeding is refused from what is not a
// data directory, while the chatd still runs, and never replaces a
// cluster's chat.
func TestGrowToACluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	solo := startDurable(t, dir, "--message-rate", "0")
	alice := &member{name: "alice"}
	alice.connect(t, solo.addr)
	alice.joinChannel(t, "design")
	said := []string{"the logo is blue", "no, green", "fine: teal"}
	for _, text := range said {
		alice.sayIn(t, "design", text)
	}
	nats := startNATS(t)
	if code, p := seedCluster(t, nats, t.TempDir()); code == 0 || !strings.Contains(p.stderr.String(), "not a chatd data directory") {
		t.Fatalf("seeding from an empty directory: exit %d, %q; want it refused as no data directory", code, p.stderr.String())
	}
	if code, p := seedCluster(t, nats, dir); code == 0 || !strings.Contains(p.stderr.String(), "is in use by another process") {
		t.Fatalf("seeding from the data directory of a running chatd: exit %d, %q; want it refused as in use", code, p.stderr.String())
	}
	alice.cancel()
	solo.terminate(t)

	code, p := seedCluster(t, nats, dir)
	if code != 0 {
		t.Fatalf("chatd --seed-from exited %d:\n%s", code, p.stderr)
	}
	if out := p.stdout.String(); !strings.Contains(out, "handed the chat of") || !strings.Contains(out, "2 channels") {
		t.Errorf("chatd --seed-from said %q; want what it handed over (general and #design)", out)
	}
	if code, p := seedCluster(t, nats, dir); code == 0 || !strings.Contains(p.stderr.String(), "already holds a chat") {
		t.Errorf("seeding the same cluster again: exit %d, %q; want it refused, the cluster's chat kept", code, p.stderr.String())
	}

	addrs := freeAddrs(t, 3)
	for i, a := range addrs {
		startNode(t, nats, "n"+string(rune('1'+i)), a)
	}
	w := alice.connect(t, addrs[2]) // a resume: she has her token
	if r := w.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("alice's resume on the cluster: %v; want RECOVERY_COMPLETE (her session came with the chat)", r)
	}
	bob := &member{name: "bob"}
	bob.connect(t, addrs[1])
	if history := bob.joinChannel(t, "design"); !slices.Equal(history, said) {
		t.Errorf("bob joined #design on the cluster and was shown %q; want %q", history, said)
	}
	alice.sayIn(t, "design", "we are three now")
	bob.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "we are three now" })
}
