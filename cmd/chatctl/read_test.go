package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/archive"
	"github.com/chatd/chatd/internal/disklog"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
)

// expectMark checks that req marks channel (or the conversation with
// with) read up to id, as chatctl's own request.
func expectMark(t *testing.T, req *chatv1.ChatRequest, channel, with, id string) {
	t.Helper()
	m := req.GetMarkRead()
	if m == nil || m.GetChannel() != channel || m.GetWith() != with || m.GetMessageId() != id || req.GetClientId() != markReadID {
		t.Fatalf("chatctl sent %v; want a mark of #%s@%s up to %s with client_id %s", req, channel, with, id, markReadID)
	}
}

func historyEv(ev *chatv1.ChatResponse) *chatv1.ChatResponse {
	ev.History = true
	return ev
}

func readEv(channel, with, id string, unread uint32) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Read{Read: &chatv1.ReadState{Channel: channel, With: with, LastReadId: id, Unread: unread}}}
}

// What chatctl prints it marks read: each conversation up to the last
// message printed in it, once a second at most, never for the user's own
// messages (chatd counts them read), and before the session ends. Read
// events and refused marks print nothing.
func TestMarksWhatIsPrintedRead(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr)
	fs := fake.next(t)
	fs.welcome(t)
	alice.expect(t, clock+`\* you joined #general`)

	start := time.Now()
	fs.send(t, 3, messageEv("bob", "general", "", "one", "g1"))
	fs.send(t, 4, messageEv("bob", "general", "", "two", "g2"))
	fs.send(t, 5, messageEv("bob", "", "alice", "psst", "p1"))
	fs.send(t, 6, messageEv("bob", "go", "", "in go", "o1"))
	fs.send(t, 7, messageEv("alice", "go", "", "mine, from my phone", "o2"))
	fs.send(t, 8, messageEv("alice", "", "carol", "hi carol", "c1"))
	alice.expect(t, clock+`\[private\] alice -> carol: hi carol$`)
	// In the order of their conversations: #general, then bob; none for
	// #go, read up to alice's own message, nor for carol.
	expectMark(t, fs.recv(t), "general", "", "g2m")
	if d := time.Since(start); d < markEvery*9/10 {
		t.Errorf("the first mark came %s after the first message, want about %s: marks are coalesced", d, markEvery)
	}
	expectMark(t, fs.recv(t), "", "bob", "p1m")

	fs.send(t, 9, messageEv("bob", "general", "", "three", "g3"))
	fs.send(t, 10, messageEv("bob", "general", "", "four", "g4"))
	expectMark(t, fs.recv(t), "general", "", "g4m") // one mark for both

	fs.send(t, 11, readEv("general", "", "g4m", 0))
	fs.send(t, 0, rejectedEv(markReadID, 9, "you are not in #general"))
	fs.send(t, 12, messageEv("bob", "general", "", "last words", "g5"))
	alice.expect(t, clock+`#general bob: last words$`)
	alice.send(t, "/quit")
	expectMark(t, fs.recv(t), "general", "", "g5m") // not left unsaid
	if req := fs.recv(t); req.GetLeave() == nil {
		t.Fatalf("after the mark chatctl sent %v, want the leave", req)
	}
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, line := range strings.Split(alice.stdout.String(), "\n") {
		if matches(clock+`[?!] `, line) {
			t.Errorf("a read event or a refused mark printed %q", line)
		}
	}
}

// With --mark-read=false nothing is marked read: a session nobody reads,
// such as a log, leaves the user's unread counts alone.
func TestMarkReadOff(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr, "--mark-read=false")
	fs := fake.next(t)
	fs.welcome(t)
	fs.send(t, 3, messageEv("bob", "general", "", "unread", "g1"))
	alice.expect(t, clock+`#general bob: unread$`)
	time.Sleep(markEvery + markEvery/2)
	alice.send(t, "/quit")
	if req := fs.recv(t); req.GetLeave() == nil {
		t.Fatalf("chatctl sent %v, want the leave and no mark", req)
	}
}

// /channels marks what was printed read first, so that its counts agree
// with the screen, and shows the unread counts beside the members.
func TestChannelsCountsUnreadAfterTheMarks(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr)
	fs := fake.next(t)
	fs.welcome(t)
	fs.send(t, 3, messageEv("bob", "general", "", "hi", "g1"))
	alice.expect(t, clock+`#general bob: hi$`)
	alice.send(t, "/channels")
	expectMark(t, fs.recv(t), "general", "", "g1m")
	req := fs.recv(t)
	if req.GetListChannels() == nil {
		t.Fatalf("after the mark chatctl sent %v, want the list_channels", req)
	}
	fs.send(t, 0, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{
		ClientId: req.GetClientId(),
		Channels: []*chatv1.Channel{{Name: "general", MemberCount: 2}, {Name: "go", MemberCount: 1, Unread: 3}},
	}}})
	alice.expect(t, clock+`Channels \(2\):$`)
	alice.expect(t, `^  #general  2 members            \(current\)$`)
	alice.expect(t, `^  #go       1 member   3 unread$`)
}

// A channel's history is marked read only past where the user stands: a
// channel just entered is read up to its last message already, a catch-up
// from another device's channel may not be.
func TestHistoryMarkedReadPastTheMarkOnly(t *testing.T) {
	t.Parallel()
	fake := startFake(t)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", fake.addr)
	fs := fake.next(t)
	fs.welcome(t)
	alice.send(t, "/join go")
	if req := fs.recv(t); req.GetJoinChannel().GetChannel() != "go" {
		t.Fatalf("chatctl sent %v, want the join of go", req)
	}
	joined := channelJoinedEv("go", "alice", 2, "alice")
	joined.GetChannelJoined().Read = &chatv1.ReadState{Channel: "go", LastReadId: "h2m"}
	fs.send(t, 3, joined)
	fs.send(t, 4, historyEv(messageEv("bob", "go", "", "old", "h1")))
	fs.send(t, 5, historyEv(messageEv("bob", "go", "", "older still read", "h2")))
	alice.expect(t, `^-- end of history --$`)

	// Entered on another device: bob's last two are unread here.
	design := channelJoinedEv("design", "alice", 3, "alice", "bob")
	design.GetChannelJoined().Read = &chatv1.ReadState{Channel: "design", LastReadId: "d1m", Unread: 2}
	fs.send(t, 6, design)
	fs.send(t, 7, historyEv(messageEv("bob", "design", "", "read", "d1")))
	fs.send(t, 8, historyEv(messageEv("bob", "design", "", "new", "d2")))
	fs.send(t, 9, historyEv(messageEv("bob", "design", "", "newer", "d3")))
	alice.expect(t, clock+`\* you joined #design \(2 members\), 2 unread$`)
	expectMark(t, fs.recv(t), "design", "", "d3m") // and none for #go
}

// startArchivedServer starts a chat kept in a data directory, with the
// archive of every message that chatd keeps there, private ones included,
// for History.
func startArchivedServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	l, err := disklog.Open(disklog.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.Open(archive.Config{Dir: filepath.Join(dir, "archive")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); l.Close() }) // after the server is down
	srv, addr := servertest.StartOn(t, server.DefaultConfig(), server.SoloConfig(), l, slog.New(slog.DiscardHandler), server.WithArchive(a))
	return &testServer{addr: addr, srv: srv}
}

// A device joining is told of the private messages it has not read, which
// are not replayed on the stream; /history shows them, and marks them read
// for the user's other devices.
func TestHistoryOfUnreadPrivateMessagesMarksThemRead(t *testing.T) {
	t.Parallel()
	ts := startArchivedServer(t)
	laptop, key := firstDevice(t, ts.addr, "alice")
	bob, err := chatclient.Connect(t.Context(), chatclient.Config{Servers: []string{ts.addr}}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bob.Close)
	for _, text := range []string{"psst", "still there?"} {
		if err := bob.Send(textRequest(text, "", "alice", "")); err != nil {
			t.Fatal(err)
		}
	}
	var last string
	for last == "" {
		ev, err := laptop.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetMessage().GetText() == "still there?" {
			last = ev.GetMessage().GetId()
		}
	}

	alice := startLive(t, t.Context(), "--name", "alice", "--server", ts.addr, "--device-key", key)
	alice.expect(t, `^Unread private messages: 2 from bob \(/history NAME shows them\)\.$`)
	alice.send(t, "/history bob")
	alice.expect(t, clock+`\[history\] \[private\] bob -> alice: still there\?$`)
	for {
		ev, err := laptop.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r := ev.GetRead(); r != nil {
			if r.GetWith() != "bob" || r.GetLastReadId() != last || r.GetUnread() != 0 {
				t.Fatalf("the laptop got read state %v, want the conversation with bob read up to %s", r, last)
			}
			break
		}
	}
}
