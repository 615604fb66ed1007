package server_test

// Tests of resuming a session over real TCP: a join with the resume token
// of a session whose stream ended without a logout.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// longGrace is a resume grace no test outlives: the session is surely
// still there when the test resumes it.
const longGrace = time.Minute

// expectRecovery checks c's welcome: recovery, the seq, the same token as
// the session's first welcome (old), and a catch-up of who is online only
// when the recovery is incomplete.
func expectRecovery(t *testing.T, c *client, old *chatv1.ChatResponse, recovery chatv1.Recovery, seq uint64) {
	t.Helper()
	w := c.welcome.GetWelcome()
	if w.GetRecovery() != recovery {
		t.Fatalf("%s: welcome %v; want recovery %v", c.name, c.welcome, recovery)
	}
	if seq != 0 && c.welcome.GetSeq() != seq {
		t.Errorf("%s: welcome seq %d; want %d", c.name, c.welcome.GetSeq(), seq)
	}
	if w.GetResumeToken() != old.GetWelcome().GetResumeToken() {
		t.Errorf("%s: resume token changed on a resume", c.name)
	}
	if complete := recovery == chatv1.Recovery_RECOVERY_COMPLETE; complete != (len(w.GetOnlineUsers()) == 0) {
		t.Errorf("%s: welcome lists %q online; want a list only when the recovery is incomplete", c.name, names(w.GetOnlineUsers()))
	}
}

// A session whose stream was cancelled is parked: others see the user
// leave, disconnected; its events go on being kept; a join with its token
// and the last seq it got takes it back with exactly what it missed, in
// order and numbered on from there, then live events. The others see it
// come back, resumed, into each of its channels.
func TestResumeWithinGrace(t *testing.T) {
	t.Parallel()
	onEachEngine(t, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }), testResumeWithinGrace)
}

// testResumeWithinGrace has bob resume on another node than his own, in a
// cluster.
func testResumeWithinGrace(t *testing.T, nodes []*testServer) {
	ts := nodes[0]
	alice := join(t, ts, "alice")
	bob := join(t, nodes[1], "bob")
	carol := join(t, nodes[2], "carol")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "carol", false)
	alice.joinChannel(t, "room", "room")
	bob.joinChannel(t, "room", "room")
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	alice.say(t, "before", "")
	alice.next(t)
	for _, c := range []*client{bob, carol} {
		expectMessage(t, c.name, c.next(t), "alice", "before", "")
	}
	lastSeq := bob.lastSeq

	bob.cancel()
	for _, c := range []*client{alice, carol} {
		expectLeft(t, c.name, c.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	}
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "carol"}) {
		t.Errorf("ListUsers = %q; want [alice carol]", got)
	}

	// What happens while bob is away: some of it concerns him.
	var missed []*chatv1.ChatResponse
	alice.say(t, "in general", "")
	missed = append(missed, alice.next(t))
	carol.next(t)
	alice.send(t, sendReq("in room", "room", "", ""))
	missed = append(missed, alice.next(t))
	alice.send(t, sendReq("psst", "", "bob", "dm"))
	expectRejected(t, "alice", alice.next(t), "dm", codes.NotFound) // not online
	dave := join(t, ts, "dave")
	missed = append(missed, alice.next(t)) // dave joined
	carol.next(t)
	carol.send(t, leaveReq())
	carolLeft := carol.next(t)
	carol.drainToEnd(t, codes.OK)
	expectLeft(t, "alice", alice.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	missed = append(missed, carolLeft)
	expectLeft(t, "dave", dave.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	alice.joinChannel(t, "other", "other") // not bob's
	dave.joinChannel(t, "room", "room")
	missed = append(missed, alice.next(t)) // dave joined room
	alice.send(t, sendReq("private", "", "dave", ""))
	alice.next(t)
	dave.next(t)

	back := resumeStream(t, nodes[2], bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	got := back.nextN(t, len(missed))
	expectSeqs(t, "bob", got, lastSeq)
	for i := range missed {
		if !equalButSeq(got[i], missed[i]) {
			t.Errorf("bob's missed event %d = %v; want %v", i, got[i], missed[i])
		}
	}
	// Then live events, and nothing in between.
	alice.send(t, sendReq("welcome back", "room", "", ""))
	expectChannelMessage(t, "bob", back.next(t), "room", "alice", "welcome back")
	if back.lastSeq != lastSeq+uint64(len(missed))+1 {
		t.Errorf("bob's first live event has seq %d; want %d", back.lastSeq, lastSeq+uint64(len(missed))+1)
	}

	// The others see bob come back, resumed, and into each of his
	// channels they are in, general included.
	you := back.welcome.GetWelcome().GetYou()
	if u := expectJoined(t, "alice", alice.next(t), "bob", true); !proto.Equal(u, you) {
		t.Errorf("alice sees %v come back; want %v, as bob's welcome says", u, you)
	}
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	expectChannelMessage(t, "alice", alice.next(t), "room", "alice", "welcome back")
	expectJoined(t, "dave", dave.next(t), "bob", true)
	expectChannelJoined(t, "dave", dave.next(t), "general", "bob")
	expectChannelJoined(t, "dave", dave.next(t), "room", "bob")
	expectChannelMessage(t, "dave", dave.next(t), "room", "alice", "welcome back")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "dave", "bob"}) {
		t.Errorf("ListUsers = %q; want [alice dave bob]", got)
	}
	if counts, _ := listChannels(t, ts); counts["room"] != 3 || counts["general"] != 3 {
		t.Errorf("ListChannels = %v; want bob counted in general and room again", counts)
	}
	// bob's session goes on: he sends, and can be sent to.
	back.send(t, sendReq("hi dave", "", "dave", ""))
	back.next(t)
	if ev := dave.next(t); ev.GetMessage().GetSender() != "bob" || ev.GetMessage().GetRecipient() != "dave" {
		t.Errorf("dave got %v; want bob's private message", ev)
	}
}

// A client that lost events in flight resumes from the last one it did
// get, and is sent the rest again.
func TestResumeFromEarlierSeqResends(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	var sent []*chatv1.ChatResponse
	for i := range 3 {
		alice.say(t, fmt.Sprint("m", i), "")
		sent = append(sent, alice.next(t))
		bob.next(t)
	}
	// Answers are not events of the session: they are not resent.
	bob.send(t, listChannelsReq("list"))
	if ev := bob.next(t); ev.GetChannelList() == nil || ev.GetSeq() != 0 {
		t.Fatalf("bob got %v; want a channel_list with seq 0", ev)
	}
	bob.send(t, sendReq("", "", "", "bad"))
	expectRejected(t, "bob", bob.next(t), "bad", codes.InvalidArgument)
	// bob's client saw the last two messages, but lost them before it
	// could use them.
	lastSeq := bob.lastSeq - 2
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	alice.say(t, "m3", "")
	sent = append(sent, alice.next(t))

	back := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	got := back.nextN(t, 3)
	expectSeqs(t, "bob", got, lastSeq)
	for i, ev := range got {
		if !equalButSeq(ev, sent[i+1]) {
			t.Errorf("bob's event %d = %v; want %v", i, ev, sent[i+1])
		}
	}
	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	alice.mark(t, "live")
	back.expectMark(t, "alice", "live")
}

// After the grace period the session is gone: the name is free again, and
// the token gets a new session, with a fresh catch-up, in general only.
func TestResumeAfterGrace(t *testing.T) {
	t.Parallel()
	const grace = 100 * time.Millisecond
	ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = grace }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.joinChannel(t, "room", "room")
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	alice.say(t, "while away", "")
	alice.next(t)

	// Wait until the name is free: a join without the token is refused
	// while it is held. The one that gets through logs out at once.
	time.Sleep(grace)
	conn := dial(t, ts.addr)
	waitFor(t, "bob's name to be free", func() bool {
		c := openStream(t, conn)
		c.name = "probe"
		c.send(t, joinReq("bob"))
		ev, err := c.recv(waitTimeout)
		if err != nil {
			checkEnd(t, c.name, err, codes.AlreadyExists)
			return false
		}
		if ev.GetWelcome() == nil {
			t.Fatalf("probe got %v; want a welcome or ALREADY_EXISTS", ev)
		}
		c.send(t, leaveReq())
		c.drainToEnd(t, codes.OK)
		return true
	})
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)

	back := resumeStream(t, ts, bob, lastSeq)
	w := back.welcome.GetWelcome()
	if w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || back.welcome.GetSeq() != 1 {
		t.Errorf("bob's welcome %v; want RECOVERY_INCOMPLETE with seq 1: a new session", back.welcome)
	}
	if got := names(w.GetOnlineUsers()); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("bob's welcome lists %q; want [alice bob], a fresh catch-up", got)
	}
	if w.GetResumeToken() == "" || w.GetResumeToken() == bob.welcome.GetWelcome().GetResumeToken() {
		t.Errorf("bob's new session has token %q; want a new one", w.GetResumeToken())
	}
	entered := back.expectChannelCatchUp(t, "general")
	if len(entered.history) != 1 || entered.history[0].GetMessage().GetText() != "while away" {
		t.Errorf("bob's general history %v; want alice's message", entered.history)
	}
	// In general only: room is no longer his.
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.mark(t, "mark")
	back.expectMark(t, "alice", "mark")
	if counts, _ := listChannels(t, ts); counts["room"] != 0 {
		t.Errorf("ListChannels = %v; want room empty", counts)
	}
}

// A session that missed more than ResumeBuffer events cannot be given them
// all: it is taken back with a fresh catch-up, in all its channels, with
// their history, and its numbering goes on from there.
func TestResumeBufferOverflow(t *testing.T) {
	t.Parallel()
	const buffer = 3
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.ResumeGrace = longGrace
		c.ResumeBuffer = buffer
	}))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.joinChannel(t, "room", "room")
	bob.joinChannel(t, "empty", "empty")
	alice.joinChannel(t, "room", "room")
	expectChannelJoined(t, "bob", bob.next(t), "room", "alice")
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	var inRoom []*chatv1.ChatResponse
	for i := range buffer + 2 {
		alice.send(t, sendReq(fmt.Sprint("m", i), "room", "", ""))
		inRoom = append(inRoom, alice.next(t))
	}

	back := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_INCOMPLETE, 0)
	if got := names(back.welcome.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("bob's welcome lists %q; want [alice bob]", got)
	}
	if back.welcome.GetSeq() <= lastSeq {
		t.Errorf("bob's welcome has seq %d; want more than %d: numbers survive a resume", back.welcome.GetSeq(), lastSeq)
	}
	// A channel_joined with history for every channel he is in, in the
	// order he entered them, numbered on from the welcome.
	general := back.expectChannelCatchUp(t, "general")
	room := back.expectChannelCatchUp(t, "room")
	empty := back.expectChannelCatchUp(t, "empty")
	var evs []*chatv1.ChatResponse
	for _, s := range []*channelCatchUp{general, room, empty} {
		evs = append(evs, s.events()...)
	}
	expectSeqs(t, "bob", evs, back.welcome.GetSeq())
	// Others saw bob leave and come back into each channel, so he is now
	// its newest member everywhere, as in their lists.
	if !slices.Equal(general.members, []string{"alice", "bob"}) || !slices.Equal(room.members, []string{"alice", "bob"}) ||
		!slices.Equal(empty.members, []string{"bob"}) {
		t.Errorf("bob's members: general %q, room %q, empty %q; want [alice bob], [alice bob], [bob]", general.members, room.members, empty.members)
	}
	checkHistory(t, "bob's room", room, inRoom)

	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	alice.mark(t, "mark")
	back.expectMark(t, "alice", "mark")
	if back.lastSeq != evs[len(evs)-1].GetSeq()+1 {
		t.Errorf("bob's live event has seq %d; want %d", back.lastSeq, evs[len(evs)-1].GetSeq()+1)
	}

	// The session goes on under the same token, numbered from its new
	// welcome: a second resume is complete.
	lastSeq = back.lastSeq
	back.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	alice.send(t, sendReq("again", "room", "", ""))
	again := alice.next(t)
	back2 := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back2, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	if ev := back2.next(t); !equalButSeq(ev, again) || ev.GetSeq() != lastSeq+1 {
		t.Errorf("bob got %v; want %v with seq %d", ev, again, lastSeq+1)
	}
}

// A token is good only for its own username: for another name it is as
// good as none. While a session is parked its name is held from everyone
// but the token holder.
func TestResumeTokenIsForItsOwnName(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	aliceToken := alice.welcome.GetWelcome().GetResumeToken()

	// alice's token with a free name: a new session, told the token was
	// no good; alice's session is untouched.
	carol := joinWith(t, dial(t, ts.addr), "carol", resumeReq("carol", aliceToken, alice.lastSeq))
	if w := carol.welcome.GetWelcome(); w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || carol.welcome.GetSeq() != 1 ||
		w.GetResumeToken() == aliceToken || !slices.Equal(names(w.GetOnlineUsers()), []string{"alice", "bob", "carol"}) {
		t.Errorf("carol's welcome %v; want a new session (seq 1, a token of its own, everyone online) with RECOVERY_INCOMPLETE", carol.welcome)
	}
	carol.expectChannelCatchUp(t, "general")
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "carol", false)

	// bob is parked: his name is held, in any case, from anyone without
	// his token.
	bobSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	expectLeft(t, "carol", carol.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for _, req := range []*chatv1.ChatRequest{
		joinReq("bob"),
		joinReq("BOB"),
		resumeReq("bob", aliceToken, bobSeq),
		resumeReq("bob", "not-a-token", bobSeq),
	} {
		c := openStream(t, dial(t, ts.addr))
		c.name = fmt.Sprintf("join %v", req.GetJoin())
		c.send(t, req)
		st := c.expectEnd(t, codes.AlreadyExists)
		t.Logf("%s: %s", c.name, st.Message())
	}
	// alice's session is not disturbed by the use of her token.
	alice.mark(t, "mark")
	carol.expectMark(t, "alice", "mark")

	// bob's own token takes his session back.
	back := resumeStream(t, ts, bob, bobSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, bobSeq)
	back.expectMark(t, "alice", "mark")
}

// A join with the token while the session's stream is still open (a
// connection that died without the server noticing yet) takes the session
// over: the old stream ends with ABORTED, the new one gets what the old
// one had not delivered, and nobody else sees anything.
func TestResumeTakesOverOpenStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		frozen bool // bob's connection is cut without either end knowing
	}{
		{"second stream", false},
		{"frozen connection", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }))
			proxy, err := netproxy.New(ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = proxy.Close() })
			alice := join(t, ts, "alice")
			bob := joinOn(t, dial(t, proxy.Addr()), "bob")
			carol := join(t, ts, "carol")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			expectJoined(t, "alice", alice.next(t), "carol", false)
			expectJoined(t, "bob", bob.next(t), "carol", false)
			bob.joinChannel(t, "room", "room")
			alice.joinChannel(t, "room", "room")
			expectChannelJoined(t, "bob", bob.next(t), "room", "alice")
			lastSeq := bob.lastSeq
			if tc.frozen {
				proxy.Freeze()
			}
			// What bob's old stream may or may not deliver.
			var inFlight []*chatv1.ChatResponse
			alice.send(t, sendReq("in flight", "room", "", ""))
			inFlight = append(inFlight, alice.next(t))
			alice.say(t, "in flight too", "")
			inFlight = append(inFlight, alice.next(t))
			carol.next(t)

			back := resumeStream(t, ts, bob, lastSeq)
			expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
			got := back.nextN(t, len(inFlight))
			expectSeqs(t, "bob", got, lastSeq)
			for i := range got {
				if !equalButSeq(got[i], inFlight[i]) {
					t.Errorf("bob's event %d = %v; want %v", i, got[i], inFlight[i])
				}
			}
			if !tc.frozen {
				evs, _ := bob.drainToEnd(t, codes.Aborted)
				for _, ev := range evs {
					if ev.GetMessage() == nil {
						t.Errorf("old stream got %v before its end; want only what was in flight", ev)
					}
				}
			}
			// Nobody saw bob leave or come back; he kept his place.
			alice.mark(t, "mark")
			for _, c := range []*client{carol, back} {
				c.expectMark(t, "alice", "mark")
			}
			if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
				t.Errorf("ListUsers = %q; want [alice bob carol]", got)
			}
			back.send(t, sendReq("still here", "room", "", ""))
			expectChannelMessage(t, "bob", back.next(t), "room", "bob", "still here")
			expectChannelMessage(t, "alice", alice.next(t), "room", "bob", "still here")
		})
	}
}

// A logout is the end of the session: its token no longer resumes it.
func TestLogoutCannotBeResumed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		logout func(*testing.T, *client)
	}{
		{"leave", func(t *testing.T, c *client) { c.send(t, leaveReq()) }},
		{"half-close", func(t *testing.T, c *client) {
			if err := c.stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }))
			alice := join(t, ts, "alice")
			bob := join(t, ts, "bob")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			bob.joinChannel(t, "room", "room")
			tc.logout(t, bob)
			bob.drainToEnd(t, codes.OK)
			expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)

			back := resumeStream(t, ts, bob, bob.lastSeq)
			if w := back.welcome.GetWelcome(); w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || back.welcome.GetSeq() != 1 ||
				w.GetResumeToken() == bob.welcome.GetWelcome().GetResumeToken() {
				t.Errorf("bob's welcome %v; want a new session (seq 1, a new token) with RECOVERY_INCOMPLETE", back.welcome)
			}
			back.expectChannelCatchUp(t, "general")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			alice.mark(t, "mark")
			back.expectMark(t, "alice", "mark") // not in room any more
		})
	}
}

// With ResumeGrace 0 nothing is kept: the name is free at once and the
// token is no good.
func TestResumeOff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.ResumeGrace = 0 }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	back := resumeStream(t, ts, bob, bob.lastSeq)
	if back.welcome.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || back.welcome.GetSeq() != 1 {
		t.Errorf("bob's welcome %v; want a new session with RECOVERY_INCOMPLETE", back.welcome)
	}
	expectJoined(t, "alice", alice.next(t), "bob", false)
}

// A session dropped as too slow is parked like any disconnected one: its
// client, reading at last, resumes from the last event it got and misses
// nothing.
func TestTooSlowSessionCanResume(t *testing.T) {
	t.Parallel()
	const queueSize = 8
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.MessageRate = 0
		c.ResumeGrace = longGrace
	}))
	slowConn := dial(t, ts.addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	slow := joinOn(t, slowConn, "slow")
	sender := join(t, ts, "sender")

	// As in TestSlowClientIsDropped: slow reads nothing until the server
	// drops it.
	big := strings.Repeat("x", 4000)
	var sent []*chatv1.ChatResponse
	dropped := false
	for i := 0; i < 1000 && !dropped; i++ {
		sender.say(t, big, fmt.Sprint(i))
		for {
			ev := sender.next(t)
			if ev.GetUserLeft() != nil {
				expectLeft(t, "sender", ev, "slow", chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
				dropped = true
				continue
			}
			expectMessage(t, "sender", ev, "sender", big, fmt.Sprint(i))
			sent = append(sent, ev)
			break
		}
	}
	if !dropped {
		t.Fatal("slow client still online after 1000 messages it did not read; want it dropped as too slow")
	}
	for i := range 3 {
		sender.say(t, "after", fmt.Sprint("after", i))
		sent = append(sent, sender.next(t))
	}

	got, _ := slow.drainToEnd(t, codes.ResourceExhausted)
	if len(got) == 0 || got[0].GetUserJoined() == nil {
		t.Fatalf("slow got %v; want sender's join first", got)
	}
	got = got[1:]
	back := resumeStream(t, ts, slow, slow.lastSeq)
	expectRecovery(t, back, slow.welcome, chatv1.Recovery_RECOVERY_COMPLETE, slow.lastSeq)
	rest := back.nextN(t, len(sent)-len(got))
	expectSeqs(t, "slow", rest, slow.lastSeq)
	got = append(got, rest...)
	for i := range sent {
		if !equalButSeq(got[i], sent[i]) {
			t.Fatalf("slow's message %d = %v; want %v", i, got[i], sent[i])
		}
	}
	t.Logf("slow got %d messages before it was dropped, %d on resuming", len(got)-len(rest), len(rest))
	expectJoined(t, "sender", sender.next(t), "slow", true)
	expectChannelJoined(t, "sender", sender.next(t), "general", "slow")
	sender.mark(t, "mark")
	back.expectMark(t, "sender", "mark")
}

// A resumed session's missed events are replayed whatever the queue's
// limit: they are kept in its replay anyway. They must not count against the
// limit either, or the first live event to come before the writer takes
// them would drop a client that is reading as fast as it can. Here the
// live events are the client's own, sent right behind its join, so that
// the server handles them as the stream starts; there are too few to
// fill the queue by themselves.
func TestResumeBacklogIsNotSlowness(t *testing.T) {
	t.Parallel()
	const queueSize, backlog, live = 8, 40, 3
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.MessageRate = 0
		c.ResumeGrace = longGrace
	}))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for i := range backlog {
		alice.say(t, fmt.Sprint("missed ", i), "")
		alice.next(t)
	}

	back := openStream(t, dial(t, ts.addr))
	back.name = "bob"
	back.send(t, resumeReq("bob", bob.welcome.GetWelcome().GetResumeToken(), lastSeq))
	for i := range live {
		back.say(t, fmt.Sprint("live ", i), "")
	}
	if ev := back.next(t); ev.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE || ev.GetSeq() != lastSeq {
		t.Fatalf("bob got %v; want a welcome with RECOVERY_COMPLETE and seq %d", ev, lastSeq)
	}
	for i := range backlog {
		ev, err := back.recv(waitTimeout)
		if err != nil {
			t.Fatalf("bob, reading his missed events: %s after %d of %d", describe(err), i, backlog)
		}
		if ev.GetMessage().GetText() != fmt.Sprint("missed ", i) || ev.GetSeq() != lastSeq+uint64(i)+1 {
			t.Fatalf("bob got %v; want missed message %d with seq %d", ev, i, lastSeq+uint64(i)+1)
		}
	}
	for i := range live {
		expectMessage(t, "bob", back.next(t), "bob", fmt.Sprint("live ", i), "")
	}
	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	for i := range live {
		expectMessage(t, "alice", alice.next(t), "bob", fmt.Sprint("live ", i), "")
	}
	alice.mark(t, "mark")
	back.expectMark(t, "alice", "mark")
}

// A session that missed too much is rebuilt from a catch-up: every
// channel's history, however much more than the queue holds. That is not
// slowness either.
func TestResumeCatchUpLargerThanQueue(t *testing.T) {
	t.Parallel()
	const queueSize, historySize = 4, 10
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.HistorySize = historySize
		c.ResumeBuffer = 1
		c.MessageRate = 0
		c.ResumeGrace = longGrace
	}))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	for _, c := range []*client{alice, bob} {
		c.joinChannel(t, "room", "room")
	}
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	for i := range historySize {
		for _, ch := range []string{"general", "room"} {
			alice.send(t, sendReq(fmt.Sprint(ch, " ", i), ch, "", ""))
			alice.next(t)
		}
	}

	back := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_INCOMPLETE, 0)
	for _, ch := range []string{"general", "room"} {
		if entered := back.expectChannelCatchUp(t, ch); len(entered.history) != historySize {
			t.Errorf("bob's %s history has %d messages; want %d", ch, len(entered.history), historySize)
		}
	}
	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	alice.mark(t, "mark")
	back.expectMark(t, "alice", "mark")
}

// A parked session keeps its channels: a channel whose only member is
// parked lists no members but is not dropped to make room, so the session
// gets it back on resuming.
func TestParkedSessionKeepsItsChannels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.MaxChannels = 3
		c.ResumeGrace = longGrace
	}))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.joinChannel(t, "bobs", "bobs")
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if counts, _ := listChannels(t, ts); counts["bobs"] != 0 {
		t.Errorf("ListChannels = %v; want bobs listed with no members online", counts)
	}

	// At the limit, the channel that is really empty goes; bobs stays.
	alice.joinChannel(t, "x", "x")
	alice.send(t, leaveChannelReq("x", ""))
	expectChannelLeft(t, "alice", alice.next(t), "x", "alice")
	alice.joinChannel(t, "y", "y")
	alice.send(t, joinChannelReq("z", "z"))
	st := alice.next(t)
	expectRejected(t, "alice", st, "z", codes.ResourceExhausted)
	t.Logf("creating z with bobs held for bob: %s", st.GetRejected().GetReason())
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 1, "bobs": 0, "y": 1}) {
		t.Errorf("ListChannels = %v; want general, bobs and y", counts)
	}

	back := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
	back.send(t, sendReq("still mine", "bobs", "", ""))
	expectChannelMessage(t, "bob", back.next(t), "bobs", "bob", "still mine")
}

// ResumeBuffer is how many missed events a resume can be given: exactly
// that many is a complete recovery, one more is not.
func TestResumeBufferBoundary(t *testing.T) {
	t.Parallel()
	const buffer = 5
	for _, missed := range []int{buffer, buffer + 1} {
		t.Run(fmt.Sprint(missed, " missed"), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(func(c *server.Config) {
				c.ResumeGrace = longGrace
				c.ResumeBuffer = buffer
			}))
			alice := join(t, ts, "alice")
			bob := join(t, ts, "bob")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			lastSeq := bob.lastSeq
			bob.cancel()
			expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
			for i := range missed {
				alice.say(t, fmt.Sprint("m", i), "")
				alice.next(t)
			}
			back := resumeStream(t, ts, bob, lastSeq)
			if missed <= buffer {
				expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_COMPLETE, lastSeq)
				expectSeqs(t, "bob", back.nextN(t, missed), lastSeq)
			} else {
				expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_INCOMPLETE, 0)
				if entered := back.expectChannelCatchUp(t, "general"); len(entered.history) != missed {
					t.Errorf("bob's general history has %d messages; want %d", len(entered.history), missed)
				}
			}
			expectJoined(t, "alice", alice.next(t), "bob", true)
			expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
			alice.mark(t, "mark")
			back.expectMark(t, "alice", "mark")
		})
	}
}

// A catch-up is not slowness however many channels it covers: a session
// rebuilt from one gets a channel_joined for each of its channels even if
// they alone are more than the queue holds.
func TestResumeCatchUpWithMoreChannelsThanQueue(t *testing.T) {
	t.Parallel()
	const queueSize = 2
	channels := []string{"general", "a", "b"}
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.ResumeBuffer = 0 // any missed event makes the recovery incomplete
		c.ResumeGrace = longGrace
	}))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	for _, ch := range channels[1:] {
		bob.joinChannel(t, ch, ch)
	}
	lastSeq := bob.lastSeq
	bob.cancel()
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	alice.say(t, "missed", "")
	alice.next(t)

	back := resumeStream(t, ts, bob, lastSeq)
	expectRecovery(t, back, bob.welcome, chatv1.Recovery_RECOVERY_INCOMPLETE, 0)
	for _, ch := range channels {
		back.expectChannelCatchUp(t, ch)
	}
	expectJoined(t, "alice", alice.next(t), "bob", true)
	expectChannelJoined(t, "alice", alice.next(t), "general", "bob")
	alice.mark(t, "mark")
	back.expectMark(t, "alice", "mark")
}
