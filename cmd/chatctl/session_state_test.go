package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// These tests feed a session events as the server would send them, without
// a server, to check what it keeps and prints.

// stateTest is a session with no connection (what it sends is queued), and
// what it prints.
type stateTest struct {
	t      *testing.T
	s      *session
	out    bytes.Buffer
	stderr bytes.Buffer
	seq    uint64
	links  int // how many links connect gave the session
}

func newStateTest(t *testing.T) *stateTest {
	st := &stateTest{t: t}
	st.s = newSession(nil, nil, &textPrinter{w: &st.out, loc: time.UTC}, &st.stderr, 0)
	return st
}

// feed hands the session one event with the next seq (history marks it as
// a history message; replies carry seq 0).
func (st *stateTest) feed(history bool, e *chatv1.ChatResponse) {
	st.t.Helper()
	e.Time = testTime
	e.History = history
	switch e.GetEvent().(type) {
	case *chatv1.ChatResponse_Rejected, *chatv1.ChatResponse_ChannelList:
	case *chatv1.ChatResponse_Welcome:
		if e.Seq == 0 {
			st.seq = 1
			e.Seq = 1
		}
	default:
		st.seq++
		e.Seq = st.seq
	}
	if err := st.s.handle(e); err != nil {
		st.t.Fatalf("handle: %v", err)
	}
}

// printed returns what was printed since the last call.
func (st *stateTest) printed() string {
	s := st.out.String()
	st.out.Reset()
	return s
}

func user(name string) *chatv1.User { return &chatv1.User{Username: name, JoinTime: testTime} }

func welcomeEv(you string, online ...string) *chatv1.ChatResponse {
	var users []*chatv1.User
	for _, n := range online {
		users = append(users, user(n))
	}
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: user(you), OnlineUsers: users, ResumeToken: "tok"}}}
}

func channelJoinedEv(ch, who string, history uint32, members ...string) *chatv1.ChatResponse {
	var users []*chatv1.User
	for _, n := range members {
		users = append(users, user(n))
	}
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: ch, User: user(who), Members: users, HistoryCount: history}}}
}

func channelLeftEv(ch, who string) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelLeft{ChannelLeft: &chatv1.ChannelLeft{Channel: ch, User: user(who)}}}
}

func messageEv(from, ch, to, text, clientID string) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Message{Message: &chatv1.Message{Id: clientID + "m", Sender: from, Channel: ch, Recipient: to, Text: text, ClientId: clientID}}}
}

func joinedEv(who string, resumed bool) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_UserJoined{UserJoined: &chatv1.UserJoined{User: user(who), Resumed: resumed}}}
}

func leftEv(who string) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_UserLeft{UserLeft: &chatv1.UserLeft{User: user(who), Reason: chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED}}}
}

func TestSessionTracksChannelsAndHistory(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 2, "bob", "alice"))
	st.feed(true, messageEv("bob", "general", "", "first", "b1"))
	st.feed(true, messageEv("bob", "general", "", "second", "b2"))
	st.feed(false, messageEv("bob", "general", "", "live", "b3"))
	want := "15:04:05 * you joined as alice\n" +
		"15:04:05 Online (2): bob, alice (you)\n" +
		"15:04:05 * you joined #general (2 members), your current channel\n" +
		"-- history of #general (2 messages) --\n" +
		"15:04:05 [history] #general bob: first\n" +
		"15:04:05 [history] #general bob: second\n" +
		"-- end of history --\n" +
		"15:04:05 #general bob: live\n"
	if got := st.printed(); got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}

	// A new user is in general without a channel_joined; one who leaves is
	// in no channel any more.
	st.feed(false, joinedEv("carol", false))
	st.feed(false, channelJoinedEv("Go", "alice", 0, "alice"))
	st.feed(false, channelJoinedEv("Go", "carol", 0))
	st.feed(false, joinedEv("dave", false))
	st.feed(false, leftEv("bob"))
	st.printed()
	for _, tt := range []struct{ cmd, want string }{
		{"/who", "Online (3): alice (you), carol, dave\n"},
		{"/who #general", "#general (3): alice (you), carol, dave\n"},
		{"/who #go", "#Go (2): alice (you), carol\n"}, // any letter case, shown as the server does
		{"/who go", "#Go (2): alice (you), carol\n"},
		{"/who #rust", "You are not in #rust: /channels shows how many are in each channel.\n"},
	} {
		if st.s.command(tt.cmd) {
			t.Fatalf("%s quits", tt.cmd)
		}
		if got := st.printed(); got != tt.want {
			t.Errorf("%s printed %q, want %q", tt.cmd, got, tt.want)
		}
	}

	// A leave from a channel is seen by its members; one's own leave of the
	// current channel goes back to general.
	st.feed(false, channelLeftEv("Go", "carol"))
	st.s.command("/switch go")
	if st.s.current != "Go" {
		t.Errorf("after /switch go, current is %q, want Go", st.s.current)
	}
	st.feed(false, channelLeftEv("Go", "alice"))
	if want := "Talking in #Go now.\n15:04:05 * you left #Go\nTalking in #general now.\n"; !strings.HasSuffix(st.printed(), want) {
		t.Errorf("leaving the current channel did not print %q", want)
	}
	if st.s.current != "general" || st.s.channel("go") != nil {
		t.Errorf("after leaving #Go: current %q, in go: %v; want general, false", st.s.current, st.s.channel("go") != nil)
	}
	st.feed(false, channelLeftEv("general", "alice"))
	if want := "You are in no channel now: /join #name to enter one, or /msg NAME text.\n"; !strings.HasSuffix(st.printed(), want) {
		t.Errorf("leaving the last channel did not say %q", want)
	}
	st.s.command("hello?")
	if got, want := st.printed(), "You are in no channel: /join #name to enter one, or /msg NAME text. Not sent.\n"; got != want {
		t.Errorf("a line with no channel printed %q, want %q", got, want)
	}
	if len(st.s.queue) != 0 {
		t.Errorf("a line with no channel was queued: %v", st.s.queue)
	}
}

func TestSessionHistoryShorterThanAnnounced(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 3, "alice"))
	st.feed(true, messageEv("bob", "general", "", "old", "b1"))
	st.feed(false, joinedEv("bob", false))
	want := "-- history of #general (3 messages) --\n" +
		"15:04:05 [history] #general bob: old\n" +
		"-- end of history --\n" +
		"15:04:05 * bob joined\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("printed\n%s\nwant it to end with\n%s", got, want)
	}
}

func TestSessionJoinSwitchesAtOnceAndBackIfRefused(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))

	// Lines typed right after /join go to the new channel: the server
	// handles the join first.
	st.s.command("/join #go")
	st.s.command("hi go")
	if len(st.s.queue) != 2 || st.s.queue[1].GetSend().GetChannel() != "go" {
		t.Fatalf("queued %v; want the join, then the line to go", st.s.queue)
	}
	id := st.s.queue[0].GetClientId()
	st.feed(false, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{ClientId: id, Code: 8, Reason: "too many channels"}}})
	if !strings.HasSuffix(st.printed(), "15:04:05 ! too many channels\nStill talking in #general.\n") {
		t.Errorf("a refused join did not say it went back to general")
	}
	if st.s.current != "general" {
		t.Errorf("current %q after a refused join, want general", st.s.current)
	}

	st.s.command("/join rust")
	st.feed(false, channelJoinedEv("Rust", "alice", 0, "alice"))
	if st.s.current != "Rust" {
		t.Errorf("current %q after joining, want the server's spelling Rust", st.s.current)
	}
	// /join of a channel one is in just switches.
	st.s.command("/join general")
	if got := st.printed(); !strings.HasSuffix(got, "Talking in #general now.\n") || st.s.current != "general" {
		t.Errorf("/join general: current %q, printed %q", st.s.current, got)
	}
	if n := len(st.s.queue); n != 3 {
		t.Errorf("%d requests queued, want 3 (the /join of a channel one is in sends nothing)", n)
	}
	st.s.command("/switch #nowhere")
	if got := st.printed(); got != "You are not in #nowhere: /join it first.\n" {
		t.Errorf("/switch to a channel one is not in printed %q", got)
	}
}

func TestSessionCommandsQueuedWhileDisconnected(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.printed()

	for _, line := range []string{"hello", "//slash", "/msg bob  psst  there", "/channels", "/leave", "/join"} {
		st.s.command(line)
	}
	out := st.printed()
	if n := strings.Count(out, "Not connected: this will be sent once reconnected.\n"); n != 5 {
		t.Errorf("said %d times that a request is queued, want 5:\n%s", n, out)
	}
	if !strings.Contains(out, "usage: /join #name (a channel name is 1 to 32 letters") {
		t.Errorf("/join without a name did not print its usage:\n%s", out)
	}
	q := st.s.queue
	if len(q) != 5 {
		t.Fatalf("queued %d requests, want 5", len(q))
	}
	if m := q[0].GetSend(); m.GetText() != "hello" || m.GetChannel() != "general" || m.GetRecipient() != "" {
		t.Errorf("a line queued as %v, want hello to general", m)
	}
	if m := q[1].GetSend(); m.GetText() != "/slash" {
		t.Errorf("//slash queued as %v, want /slash", m)
	}
	if m := q[2].GetSend(); m.GetText() != "psst  there" || m.GetRecipient() != "bob" || m.GetChannel() != "" {
		t.Errorf("/msg queued as %v, want psst  there to bob", m)
	}
	if q[3].GetListChannels() == nil || q[4].GetLeaveChannel().GetChannel() != "general" {
		t.Errorf("queued %v, %v; want list_channels, then leave_channel general", q[3], q[4])
	}
	for i := range maxQueued {
		st.s.command("more " + string(rune('a'+i%26)))
	}
	if len(st.s.queue) != maxQueued || !strings.Contains(st.printed(), "requests are waiting already: not sent.") {
		t.Errorf("queue grew to %d (limit %d) without saying lines were not sent", len(st.s.queue), maxQueued)
	}
}

func TestSessionUnconfirmedMessages(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	// Sent before a break, one confirmed in the replay, one never.
	st.s.unconfirmed = map[string]unconfirmed{"a": {"replayed", 1}, "b": {"lost", 1}, "c": {"after", 2}}
	st.s.epoch = 2
	st.feed(false, messageEv("alice", "general", "", "replayed", "a"))
	if out := st.printed(); strings.Contains(out, "lost") {
		t.Errorf("a confirmation from before the break says something was lost:\n%s", out)
	}
	st.feed(false, messageEv("alice", "general", "", "after", "c"))
	if want := `chatctl: lost when the connection broke, not delivered: "lost"; send again if needed`; !strings.Contains(st.printed(), want) {
		t.Errorf("a message sent after the break was confirmed first, and nothing said %q", want)
	}
	if len(st.s.unconfirmed) != 0 {
		t.Errorf("still unconfirmed: %v", st.s.unconfirmed)
	}

	// An incomplete recovery cannot tell: say which may be lost.
	st.s.unconfirmed["d"] = unconfirmed{"maybe", 2}
	st.s.epoch = 3
	w := welcomeEv("alice", "alice")
	w.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	st.feed(false, w)
	if want := `chatctl: these messages may not have been delivered: "maybe"`; !strings.Contains(st.printed(), want) {
		t.Errorf("an incomplete recovery did not say %q", want)
	}
}

func TestSessionIncompleteRecoveryRebuildsState(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice", "bob"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice", "bob"))
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.s.command("/switch go")
	st.s.epoch = 2 // as after a reconnection

	w := welcomeEv("alice", "alice", "carol")
	w.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	w.Seq = 40
	st.feed(false, w)
	st.seq = 40
	if st.s.channel("general") != nil || st.s.channel("go") != nil {
		t.Errorf("channels kept across an incomplete recovery")
	}
	// The session was kept (same token): chatd says which channels it is
	// in, go among them, and go stays current all along.
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice", "carol"))
	if st.s.current != "go" {
		t.Errorf("current %q while go is not back yet, want go still", st.s.current)
	}
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	if st.s.current != "go" {
		t.Errorf("current %q once go is back, want go", st.s.current)
	}
	if got, want := st.printed(), "15:04:05 * you joined #general (2 members)\n15:04:05 * you joined #go (1 member), your current channel\n"; !strings.HasSuffix(got, want) {
		t.Errorf("the channels given back printed\n%s\nwant it to end with\n%s", got, want)
	}
	st.s.command("/who")
	if got := st.printed(); got != "Online (2): alice (you), carol\n" {
		t.Errorf("/who after the rebuild printed %q", got)
	}
	if st.stderr.Len() != 0 {
		t.Errorf("stderr %q; the welcome's seq restarts the count without a warning", st.stderr.String())
	}

	// A complete recovery keeps everything.
	w = welcomeEv("alice")
	w.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_COMPLETE
	w.Seq = st.seq
	st.feed(false, w)
	st.s.command("/who #go")
	if got := st.printed(); got != "15:04:05 * reconnected: nothing missed\n#go (1): alice (you)\n" {
		t.Errorf("after a complete recovery printed %q", got)
	}
}

func TestSessionWarnsOfGaps(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.seq++ // one event lost
	st.feed(false, joinedEv("bob", false))
	if want := "chatctl: warning: events out of order (seq 3 after 1); /who may be wrong\n"; st.stderr.String() != want {
		t.Errorf("stderr %q, want %q", st.stderr.String(), want)
	}
}

// A line longer than the server takes is refused here, with a reason, and
// not sent: past the server's request limit it would end the session.
func TestSessionRefusesTooLongLines(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.printed()
	for _, line := range []string{strings.Repeat("x", 4097), "/msg bob " + strings.Repeat("y", 20000)} {
		st.s.command(line)
	}
	out := st.printed()
	if n := strings.Count(out, "message too long"); n != 2 {
		t.Errorf("said %d times that a line is too long, want 2:\n%s", n, out)
	}
	if len(st.s.queue) != 0 {
		t.Errorf("queued %d requests, want none", len(st.s.queue))
	}
	st.s.command(strings.Repeat("z", 4096)) // the longest that may go
	if strings.Contains(st.printed(), "too long") {
		t.Error("a line of exactly 4096 bytes was refused")
	}
}

// Commands typed right after a /join, before its answer (typed ahead, or
// from a pipe), act on the channel being entered: the server takes a
// session's requests in order.
func TestSessionCommandsRightAfterJoin(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.printed()

	st.s.command("/join #go")
	st.s.command("/who #go")
	if got := st.printed(); !strings.Contains(got, "Still entering #go") {
		t.Errorf("/who of a channel being entered printed %q; want that it is still being entered", got)
	}
	st.s.command("/leave")
	if n := len(st.s.queue); n != 2 || st.s.queue[1].GetLeaveChannel().GetChannel() != "go" {
		t.Errorf("queued %v; want the join, then a leave of go", st.s.queue)
	}
	st.s.command("/leave #nowhere")
	if got := st.printed(); !strings.Contains(got, "You are not in #nowhere.") || len(st.s.queue) != 2 {
		t.Errorf("/leave of a channel neither joined nor being entered printed %q and queued %d; want a refusal and nothing sent", got, len(st.s.queue))
	}
}

// sentStream stands for a Chat stream in these tests: it records what the
// session sends on it.
type sentStream struct {
	chatStream // nil: only Send is used
	sent       []*chatv1.ChatRequest
}

func (s *sentStream) Send(req *chatv1.ChatRequest) error {
	s.sent = append(s.sent, req)
	return nil
}

// connect gives the session a link that records what it sends, as after
// a reconnection (the session starts on link 1).
func (st *stateTest) connect() *sentStream {
	ss := &sentStream{}
	if st.links++; st.links > 1 {
		st.s.epoch++
	}
	st.s.link = &link{stream: ss}
	return ss
}

// resume feeds the welcome of a reconnection with recovery.
func (st *stateTest) resume(recovery chatv1.Recovery) {
	st.t.Helper()
	w := welcomeEv("alice")
	w.GetWelcome().Recovery = recovery
	w.Seq = st.seq
	st.feed(false, w)
}

func rejectedEv(clientID string, code int32, reason string) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{ClientId: clientID, Code: code, Reason: reason}}}
}

// A refused /join whose rejection was lost with the connection: answers
// are not replayed on a resume, so the join is sent again once back, and
// its refusal takes the session back to the channel before it.
func TestSessionJoinRefusedAcrossResume(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	first := st.connect()
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.s.command("/join go")
	if len(first.sent) != 1 || first.sent[0].GetJoinChannel().GetChannel() != "go" {
		t.Fatalf("sent %v, want the join of go", first.sent)
	}
	id := first.sent[0].GetClientId()
	st.s.link = nil // the connection breaks; the rejection is lost

	again := st.connect()
	st.resume(chatv1.Recovery_RECOVERY_COMPLETE)
	if len(again.sent) != 1 || again.sent[0].GetJoinChannel().GetChannel() != "go" || again.sent[0].GetClientId() != id {
		t.Fatalf("after a complete recovery sent %v, want the join of go again, with its client_id %s", again.sent, id)
	}
	st.printed()
	st.feed(false, rejectedEv(id, 8, "you are in 2 channels, the most allowed"))
	if got, want := st.printed(), "15:04:05 ! you are in 2 channels, the most allowed\nStill talking in #general.\n"; got != want {
		t.Errorf("the refusal of the join sent again printed %q, want %q", got, want)
	}
	if st.s.current != "general" || st.s.isJoining("go") {
		t.Errorf("current %q, joining go %v; want general, false", st.s.current, st.s.isJoining("go"))
	}
}

// Once back, every /join and /channels left unanswered by the break is
// sent again, in order; a join that had got in is answered "already in",
// which is its success and shows nothing.
func TestSessionResendsUnansweredRequests(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	first := st.connect()
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.s.command("/join go")
	st.s.command("/channels")
	st.s.command("/join rust")
	st.s.command("/leave rust") // not to be entered again, whatever came of the join
	st.s.command("/channels")
	st.feed(false, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{ClientId: first.sent[4].GetClientId()}}})
	if len(first.sent) != 5 {
		t.Fatalf("sent %d requests, want 5", len(first.sent))
	}
	goID, listID := first.sent[0].GetClientId(), first.sent[1].GetClientId()
	st.s.link = nil
	st.s.command("/join books") // queued: sent once back, not again
	st.printed()

	again := st.connect()
	st.resume(chatv1.Recovery_RECOVERY_COMPLETE)
	if len(again.sent) != 2 || again.sent[0].GetClientId() != goID || again.sent[0].GetJoinChannel() == nil ||
		again.sent[1].GetClientId() != listID || again.sent[1].GetListChannels() == nil {
		t.Fatalf("after a complete recovery sent %v; want the join of go, then the first /channels, again", again.sent)
	}
	if st.s.current != "books" {
		t.Errorf("current %q, want books (the /join still queued)", st.s.current)
	}
	// The replay shows the join of go got in; its second try is refused.
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.feed(false, rejectedEv(goID, 9, "you are already in #go"))
	st.feed(false, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{ClientId: listID, Channels: []*chatv1.Channel{{Name: "general", MemberCount: 1}, {Name: "go", MemberCount: 1}}}}})
	out := st.printed()
	if strings.Contains(out, "already in") {
		t.Errorf("the second try of a join that got in was shown as refused:\n%s", out)
	}
	if !strings.Contains(out, "Channels (2):") {
		t.Errorf("the channel list asked for before the break was not shown:\n%s", out)
	}
	if st.s.isJoining("go") || st.s.channel("go") == nil || len(st.s.listing) != 0 || len(st.s.resent) != 0 {
		t.Errorf("joining go %v, in go %v, lists awaited %v, resent %v; want false, true, none, none",
			st.s.isJoining("go"), st.s.channel("go") != nil, st.s.listing, st.s.resent)
	}

	// So does an incomplete recovery. Meanwhile the session talks in a
	// channel it is in; if the join is refused again, it stays there.
	st.s.command("/channels")
	st.s.command("/join c")
	st.s.link = nil
	third := st.connect()
	st.resume(chatv1.Recovery_RECOVERY_INCOMPLETE)
	if len(third.sent) != 2 || third.sent[0].GetListChannels() == nil || third.sent[1].GetJoinChannel().GetChannel() != "c" {
		t.Fatalf("after an incomplete recovery sent %v; want the /channels and the join of c again", third.sent)
	}
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.printed()
	st.feed(false, rejectedEv(third.sent[1].GetClientId(), 8, "too many channels"))
	if got, want := st.printed(), "15:04:05 ! too many channels\nStill talking in #general.\n"; got != want {
		t.Errorf("the join of c refused after an incomplete recovery printed %q, want %q", got, want)
	}
	if st.s.current != "general" {
		t.Errorf("current %q, want general", st.s.current)
	}
}

// A /join of a name the server would refuse says what is wrong with it and
// gives a name that would do, and sends nothing.
func TestSessionExplainsBadChannelNames(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.printed()
	const rules = ` (a channel name is 1 to 32 letters, digits, "-", "_" or ".", with one leading "#" ignored); for example: /join `
	long := strings.Repeat("x", 40)
	for _, tt := range []struct{ line, want string }{
		{"/join #bad name", `cannot join "#bad name": spaces are not allowed in a channel name` + rules + "#bad-name"},
		{"/join  ops  team ", `cannot join "ops  team": spaces are not allowed in a channel name` + rules + "#ops-team"},
		{"/join #a/b", `cannot join "#a/b": '/' is not allowed in a channel name` + rules + "#a-b"},
		{"/join #" + long, `cannot join "#` + long + `": a channel name has at most 32 characters, and this one has 40` + rules + "#" + long[:32]},
		{"/join #\x1b[2J", `cannot join "#\x1b[2J": '\x1b' is not allowed in a channel name` + rules + "#2J"},
		{"/join \u202egood", `cannot join "\u202egood": '\u202e' is not allowed in a channel name` + rules + "#good"},
		{"/join #!!", `cannot join "#!!": '!' is not allowed in a channel name` + rules + "#go"},
		{"/join #", `a channel needs a name: /join #name (a channel name is 1 to 32 letters, digits, "-", "_" or ".", with one leading "#" ignored), for example /join #go`},
	} {
		st.s.command(tt.line)
		if got := st.printed(); got != tt.want+"\n" {
			t.Errorf("%q printed\n%s\nwant\n%s", tt.line, got, tt.want)
		}
	}
	if len(st.s.queue) != 0 || st.s.current != "general" {
		t.Errorf("queued %v, current %q; want nothing sent, still general", st.s.queue, st.s.current)
	}
	st.s.command("/join #Ops.team_2")
	if len(st.s.queue) != 1 || st.s.queue[0].GetJoinChannel().GetChannel() != "Ops.team_2" {
		t.Errorf("a good name queued %v, want its join", st.s.queue)
	}
}

// freshWelcome is the welcome of a resume that found no session (chatd
// restarted, or the session expired): a new session, with a token of its
// own.
func (st *stateTest) freshWelcome(token string, online ...string) {
	st.t.Helper()
	w := welcomeEv("alice", online...)
	w.GetWelcome().Recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	w.GetWelcome().ResumeToken = token
	st.seq = 0
	st.feed(false, w)
}

// After a restart chatd knows nothing of the session's channels: chatctl
// enters them again before sending what was typed meanwhile, and the
// current channel stays what it was.
func TestSessionRejoinsChannelsAfterARestart(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	first := st.connect()
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.s.command("/join ops")
	st.s.command("/join go")
	st.feed(false, channelJoinedEv("ops", "alice", 0, "alice"))
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.s.command("/switch ops")
	if len(first.sent) != 2 {
		t.Fatalf("sent %v, want the two joins", first.sent)
	}
	st.s.link = nil // chatd goes away
	st.s.command("typed while away")
	st.printed()

	again := st.connect()
	st.freshWelcome("tok2", "alice")
	st.s.flush()
	var sent []string
	for _, r := range again.sent {
		switch {
		case r.GetJoinChannel() != nil:
			sent = append(sent, "join "+r.GetJoinChannel().GetChannel())
		case r.GetSend() != nil:
			sent = append(sent, "send "+r.GetSend().GetChannel()+" "+r.GetSend().GetText())
		}
	}
	if got, want := strings.Join(sent, ", "), "join ops, join go, send ops typed while away"; got != want {
		t.Fatalf("once back, sent %s; want %s", got, want)
	}
	if st.s.current != "ops" {
		t.Errorf("current %q once back, want ops still", st.s.current)
	}
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.feed(false, channelJoinedEv("ops", "alice", 0, "alice"))
	st.feed(false, messageEv("alice", "ops", "", "typed while away", again.sent[2].GetClientId()))
	st.feed(false, rejectedEv(again.sent[1].GetClientId(), 8, "you are in 2 channels, the most allowed"))
	want := "15:04:05 * you joined #general (1 member)\n" +
		"15:04:05 * you joined #ops (1 member), your current channel\n" +
		"15:04:05 #ops alice: typed while away\n" +
		"15:04:05 ! you are in 2 channels, the most allowed\n" +
		"Could not get back into #go.\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("printed\n%s\nwant it to end with\n%s", got, want)
	}
	if st.s.current != "ops" || st.s.channel("go") != nil || len(st.s.joining) != 0 {
		t.Errorf("current %q, in go %v, joining %v; want ops, false, nothing", st.s.current, st.s.channel("go") != nil, st.s.joining)
	}

	// If the current channel cannot be entered again, the session says
	// so and where lines go now; what was meant for it is not sent
	// anywhere else.
	st.s.link = nil
	st.s.command("meant for ops")
	third := st.connect()
	st.freshWelcome("tok3", "alice")
	st.s.flush()
	if len(third.sent) != 2 || third.sent[0].GetJoinChannel().GetChannel() != "ops" || third.sent[1].GetSend().GetChannel() != "ops" {
		t.Fatalf("once back, sent %v; want the join of ops, then the line to ops", third.sent)
	}
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.printed()
	st.feed(false, rejectedEv(third.sent[0].GetClientId(), 8, "too many channels"))
	st.feed(false, rejectedEv(third.sent[1].GetClientId(), 5, "there is no channel #ops"))
	want = "15:04:05 ! too many channels\n" +
		"Could not get back into #ops: talking in #general now.\n" +
		"15:04:05 ! there is no channel #ops\n" +
		"Not sent: \"meant for ops\"\n"
	if got := st.printed(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
	if st.s.current != "general" {
		t.Errorf("current %q, want general", st.s.current)
	}
}

// A welcome says which private conversations have messages unread, with
// how to read them: they are not replayed on the stream.
func TestSessionSaysWhatIsUnreadPrivately(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	w := welcomeEv("alice", "alice")
	w.GetWelcome().UnreadPrivate = []*chatv1.ReadState{{With: "bob", Unread: 3}, {With: "carol\x1b", Unread: 1}}
	st.feed(false, w)
	want := "Unread private messages: 3 from bob, 1 from carol\\x1b (/history NAME shows them).\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("the welcome printed\n%s\nwant it to end with\n%s", got, want)
	}
	st.feed(false, welcomeEv("alice", "alice"))
	if got := st.printed(); strings.Contains(got, "Unread") {
		t.Errorf("a welcome with nothing unread printed\n%s", got)
	}
}
