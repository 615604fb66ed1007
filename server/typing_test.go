package server_test

import (
	"slices"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func typingReq(channel, recipient string, stopped bool) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Typing{Typing: &chatv1.Typing{Channel: channel, Recipient: recipient, Stopped: stopped}}}
}

// expectTyping checks that ev says who is typing in channel (or with, for a
// private conversation), unnumbered.
func expectTyping(t *testing.T, who string, ev *chatv1.ChatResponse, channel, with string, users []string, several bool) {
	t.Helper()
	ts := ev.GetTyping()
	if ts == nil || ts.GetChannel() != channel || ts.GetWith() != with || !slices.Equal(ts.GetUsers(), users) || ts.GetSeveral() != several || ev.GetSeq() != 0 {
		t.Fatalf("%s: got %v; want typing in #%s@%s by %v (several %v), seq 0", who, ev, channel, with, users, several)
	}
}

// Typing is shown to the conversation, ends with the typer's message (in
// the same order: the message is the next thing seen, never typing after
// it) or when the typer stops, and refreshes change nothing others see.
func TestTyping(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)

	alice.send(t, typingReq("", "", false))
	for _, c := range []*client{alice, bob} {
		expectTyping(t, c.name, c.next(t), "general", "", []string{"alice"}, false)
	}
	alice.send(t, typingReq("General", "", false)) // a refresh: nothing new
	alice.say(t, "done typing", "a1")
	for _, c := range []*client{alice, bob} {
		expectMessage(t, c.name, c.next(t), "alice", "done typing", "a1")
	}
	// Her message, to general unnamed, ends the typing she named general:
	// typing again is shown at once.
	alice.send(t, typingReq("#GENERAL", "", false))
	for _, c := range []*client{alice, bob} {
		expectTyping(t, c.name, c.next(t), "general", "", []string{"alice"}, false)
	}
	alice.send(t, typingReq("", "", true))
	for _, c := range []*client{alice, bob} {
		expectTyping(t, c.name, c.next(t), "general", "", nil, false)
	}
	bob.send(t, typingReq("", "", false))
	for _, c := range []*client{alice, bob} {
		expectTyping(t, c.name, c.next(t), "general", "", []string{"bob"}, false)
	}
	bob.send(t, typingReq("", "", true))
	for _, c := range []*client{alice, bob} {
		expectTyping(t, c.name, c.next(t), "general", "", nil, false)
	}

	// Privately, only the other user is shown it; a stop names whose
	// typing ended, and typing again right after a stop is shown at once.
	bob.send(t, typingReq("", "alice", false))
	expectTyping(t, "alice", alice.next(t), "", "bob", []string{"bob"}, false)
	bob.send(t, typingReq("", "alice", true))
	expectTyping(t, "alice", alice.next(t), "", "bob", nil, false)
	bob.send(t, typingReq("", "alice", false))
	expectTyping(t, "alice", alice.next(t), "", "bob", []string{"bob"}, false)
	bob.send(t, sendReq("psst", "", "alice", "p"))
	expectMessage(t, "bob", bob.next(t), "bob", "psst", "p")
	expectMessage(t, "alice", alice.next(t), "bob", "psst", "p")

	// A channel one is not in is refused; nothing is kept for a resume.
	bob.send(t, &chatv1.ChatRequest{ClientId: "x", Action: &chatv1.ChatRequest_Typing{Typing: &chatv1.Typing{Channel: "design"}}})
	expectRejected(t, "bob", bob.next(t), "x", codes.FailedPrecondition)
	alice.cancel()
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	back := resumeStream(t, ts, alice, 0)
	back.expectChannelCatchUp(t, "general")
	expectJoined(t, "bob", bob.next(t), "alice", true)
	expectChannelJoined(t, "bob", bob.next(t), "general", "alice")
	bob.mark(t, "no typing kept")
	back.expectMark(t, "bob", "no typing kept")
}

// A resumed or new device is told who is typing now.
func TestTypingToldOnJoin(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.send(t, typingReq("", "", false))
	expectTyping(t, "alice", alice.next(t), "general", "", []string{"bob"}, false)
	phone := joinDevice(t, ts, alice)
	expectTyping(t, "phone", phone.next(t), "general", "", []string{"bob"}, false)
}

// Past three typers a channel shows "several", and changes among them send
// nothing; once few enough remain to name, they are named again.
func TestTypingSeveral(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	watcher := join(t, ts, "watcher")
	var typers []*client
	for _, name := range []string{"t1", "t2", "t3", "t4", "t5"} {
		c := join(t, ts, name)
		expectJoined(t, "watcher", watcher.next(t), name, false)
		typers = append(typers, c)
	}
	for i, c := range typers {
		c.send(t, typingReq("", "", false))
		switch {
		case i < 3:
			expectTyping(t, "watcher", watcher.next(t), "general", "", []string{"t1", "t2", "t3"}[:i+1], false)
		case i == 3:
			expectTyping(t, "watcher", watcher.next(t), "general", "", nil, true)
		}
	}
	// t5 stopping leaves four: still several, nothing sent. t4's message
	// leaves three: named again, after the message.
	typers[4].send(t, typingReq("", "", true))
	typers[3].say(t, "sent", "")
	expectChannelMessage(t, "watcher", watcher.next(t), "general", "t4", "sent")
	expectTyping(t, "watcher", watcher.next(t), "general", "", []string{"t1", "t2", "t3"}, false)
}

// Typing ends by itself 6 seconds (of the chat's clock) after its last
// refresh, at the same point of the log on every node; a refresh puts
// the end off.
func TestTypingEndsByItself(t *testing.T) {
	t.Parallel()
	m := server.NewMachine(server.DefaultConfig())
	t0 := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	seq := uint64(0)
	apply := func(at time.Duration, cmd *clusterv1.Command) {
		t.Helper()
		seq++
		cmd.Node, cmd.Id = "n1", "n1-"+time.Duration(seq).String()
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(server.Entry{Seq: seq, Time: t0.Add(at), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	heartbeat := &clusterv1.Command{Action: &clusterv1.Command_Heartbeat{Heartbeat: &clusterv1.Heartbeat{Name: "n1"}}}
	apply(0, &clusterv1.Command{Action: &clusterv1.Command_Join{Join: &clusterv1.Join{Username: "alice", TokenHash: []byte("t")}}})
	_, attach, _ := m.Attached("alice")
	typing := func() *clusterv1.Command {
		return &clusterv1.Command{Action: &clusterv1.Command_Typing{Typing: &clusterv1.Typing{Stream: &clusterv1.Stream{UserKey: "alice", Attach: attach}}}}
	}
	apply(time.Second, typing())
	apply(5*time.Second, typing()) // refreshed: now ends at 11 s
	for _, tc := range []struct {
		at   time.Duration
		want []string
	}{
		{6 * time.Second, []string{"alice"}},
		{10900 * time.Millisecond, []string{"alice"}},
		{11 * time.Second, nil},
	} {
		apply(tc.at, proto.Clone(heartbeat).(*clusterv1.Command))
		if got := m.Typing("general"); !slices.Equal(got, tc.want) {
			t.Errorf("at %s, typing in #general: %v; want %v", tc.at, got, tc.want)
		}
	}
}
