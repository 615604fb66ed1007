package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// startDurable starts a chatd that keeps its chat in dir.
func startDurable(t *testing.T, dir string, extra ...string) *chatd {
	t.Helper()
	// startChatd gives it a directory of its own; the last --data-dir
	// given is the one it takes.
	return startChatd(t, append([]string{"--data-dir", dir}, extra...)...)
}

// joinChannel has m join channel and returns the history it was shown.
func (m *member) joinChannel(t *testing.T, channel string) []string {
	t.Helper()
	if err := m.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: channel}}}); err != nil {
		t.Fatal(err)
	}
	var joined *chatv1.ChannelJoined
	m.until(t, func(ev *chatv1.ChatResponse) bool {
		joined = ev.GetChannelJoined()
		return joined.GetChannel() == channel && joined.GetUser().GetUsername() == m.name
	})
	var history []string
	for range joined.GetHistoryCount() {
		history = append(history, m.next(t).GetMessage().GetText())
	}
	return history
}

// sayIn sends text to channel and waits for its echo: once it has it, the
// message is kept.
func (m *member) sayIn(t *testing.T, channel, text string) {
	t.Helper()
	if err := m.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Channel: channel, Text: text}}}); err != nil {
		t.Fatal(err)
	}
	m.until(t, func(ev *chatv1.ChatResponse) bool {
		if r := ev.GetRejected(); r != nil {
			t.Fatalf("%s: %q refused: %s", m.name, text, r.GetReason())
		}
		msg := ev.GetMessage()
		return msg.GetSender() == m.name && msg.GetText() == text
	})
}

// A chatd restarted on its data directory has the chat it had: the channel
// someone made and what was said in it, shown to whoever joins it; and the
// sessions of those who were there, taken back with nothing missed.
func TestRestartKeepsTheChat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := []string{"--message-rate", "0", "--history-size", "3"}
	c := startDurable(t, dir, flags...)
	alice := &member{name: "alice"}
	alice.connect(t, c.addr)
	alice.joinChannel(t, "design")
	var all []string
	for i := range 40 {
		text := fmt.Sprint("idea ", i)
		alice.sayIn(t, "design", text)
		all = append(all, text)
	}
	said := []string{"the logo is blue", "no, green", "fine: teal"}
	for _, text := range said {
		alice.sayIn(t, "design", text)
	}
	all = append(all, said...)
	alice.cancel()
	c.terminate(t)

	c = startDurable(t, dir, flags...)
	w := alice.connect(t, c.addr) // a resume: she has her token
	if r := w.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("alice's resume after the restart: %v; want RECOVERY_COMPLETE (her session was kept)", r)
	}
	bob := &member{name: "bob"}
	bob.connect(t, c.addr)
	if history := bob.joinChannel(t, "design"); !slices.Equal(history, said) {
		t.Errorf("bob joined #design after the restart and was shown %q; want %q", history, said)
	}
	// Scrolling back reaches every message, past what joiners are shown.
	cli := chatv1.NewChatServiceClient(dialGRPC(t, c.addr))
	var scrolled []string
	req := &chatv1.HistoryRequest{Channel: "design", Limit: 10}
	for {
		resp, err := cli.History(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, m := range resp.GetMessages() {
			page = append(page, m.GetMessage().GetText())
		}
		scrolled = append(page, scrolled...)
		if !resp.GetMore() {
			break
		}
		req.BeforeId = resp.GetMessages()[0].GetMessage().GetId()
	}
	if !slices.Equal(scrolled, all) {
		t.Errorf("scrolling #design back after the restart: %d messages; want all %d", len(scrolled), len(all))
	}
}

// What a sender has its echo for survives chatd being killed: it was
// written before it was applied and echoed.
func TestAcknowledgedMessagesSurviveKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startDurable(t, dir)
	alice := &member{name: "alice"}
	alice.connect(t, c.addr)
	var said []string
	for i := range 20 {
		text := fmt.Sprint("message ", i)
		alice.sayIn(t, "general", text)
		said = append(said, text)
	}
	c.kill(t)

	c = startDurable(t, dir)
	bob := &member{name: "bob"}
	bob.connect(t, c.addr)
	joined := bob.next(t).GetChannelJoined()
	var history []string
	for range joined.GetHistoryCount() {
		history = append(history, bob.next(t).GetMessage().GetText())
	}
	if !slices.Equal(history, said) {
		t.Errorf("general's history after chatd was killed: %q; want every message alice had an echo for, %q", history, said)
	}
}

// With --memory, a restart clears the chat, as the tutorial's server did,
// and nothing is written.
func TestMemoryForgets(t *testing.T) {
	t.Parallel()
	p := start(t, chatdBin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--memory")
	p.expect(t, `^chatd: gRPC listening on `)
	p.expect(t, `^chatd: keeping the chat in memory only \(--memory\): a restart clears it$`)
	p.terminate(t)
	if _, err := os.Stat("chatd-data"); err == nil {
		t.Errorf("chatd --memory made chatd-data in the working directory")
	}
}

// Two chatd on one data directory would both write the chat: the second
// is refused at once, saying why, and the first goes on.
func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startDurable(t, dir)
	second := start(t, chatdBin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", dir)
	if code := second.wait(t); code == 0 {
		t.Fatal("a second chatd on the same data directory started")
	}
	if !strings.Contains(second.stderr.String(), "is in use by another process") {
		t.Errorf("second chatd's error: %q; want it to say the data directory is in use", second.stderr.String())
	}
	alice := &member{name: "alice"}
	alice.connect(t, first.addr)
	alice.sayIn(t, "general", "still here")
}

// A damaged data directory stops chatd before it serves anything, with an
// error that names the damaged file: never a silently emptied chat.
func TestDamagedDataDirRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startDurable(t, dir, "--fsync-interval", "0")
	alice := &member{name: "alice"}
	alice.connect(t, c.addr)
	for i := range 5 {
		alice.sayIn(t, "general", fmt.Sprint("message ", i))
	}
	c.kill(t) // no snapshot at the end: the log holds it all

	segs, err := filepath.Glob(filepath.Join(dir, "log", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	seg := segs[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x55 // not the torn end a crash leaves
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, chatdBin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", dir)
	if code := p.wait(t); code == 0 {
		t.Fatal("chatd started on a damaged data directory")
	}
	if msg := p.stderr.String(); !strings.Contains(msg, seg) || !strings.Contains(msg, "damaged") {
		t.Errorf("chatd's error on a damaged log: %q; want it to name %s as damaged", msg, seg)
	}
	if strings.Contains(p.stdout.String(), "listening") {
		t.Errorf("chatd listened on a damaged data directory: %q", p.stdout.String())
	}
}
