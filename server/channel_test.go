package server_test

// Tests of channels over real TCP: joining, creating, leaving, listing,
// and the limits on how many there are.

import (
	"maps"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Joining a channel that does not exist creates it under the name as its
// creator wrote it; the name is the same channel in any letter case and
// with a leading "#". Members hear of each other, non-members hear
// nothing, and channel messages reach members only.
func TestJoinChannelCreatesAndAnnounces(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	carol := join(t, ts, "carol")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "carol", false)

	before := alice.lastSeq
	entered := alice.joinChannel(t, "Go", "Go")
	if entered.joined.GetSeq() != before+1 || !slices.Equal(entered.members, []string{"alice"}) || len(entered.history) != 0 {
		t.Errorf("alice creating #Go got %v; want seq %d, members [alice], no history", entered.joined, before+1)
	}
	if !proto.Equal(entered.joined.GetChannelJoined().GetUser(), alice.welcome.GetWelcome().GetYou()) {
		t.Errorf("channel_joined user %v; want alice as her welcome gave her", entered.joined.GetChannelJoined().GetUser())
	}

	// "#go" is #Go, and is shown as alice wrote it.
	entered = bob.joinChannel(t, "#go", "Go")
	if !slices.Equal(entered.members, []string{"alice", "bob"}) {
		t.Errorf("bob's #Go members = %q; want [alice bob], in the order they entered", entered.members)
	}
	expectChannelJoined(t, "alice", alice.next(t), "Go", "bob")
	entered = carol.joinChannel(t, "GO", "Go")
	if !slices.Equal(entered.members, []string{"alice", "bob", "carol"}) {
		t.Errorf("carol's #Go members = %q; want [alice bob carol]", entered.members)
	}
	for _, c := range []*client{alice, bob} {
		expectChannelJoined(t, c.name, c.next(t), "Go", "carol")
	}
	counts, _ := listChannels(t, ts)
	if want := map[string]uint32{"general": 3, "Go": 3}; !maps.Equal(counts, want) {
		t.Errorf("ListChannels = %v; want %v: one channel #Go, however it was written", counts, want)
	}

	// A message to "#GO" is a message to #Go, for its members.
	bob.send(t, sendReq("hello Go", "#GO", "", "b1"))
	for _, c := range []*client{bob, alice, carol} {
		m := expectChannelMessage(t, c.name, c.next(t), "Go", "bob", "hello Go")
		if m.GetClientId() != "b1" {
			t.Errorf("%s: client_id %q; want b1", c.name, m.GetClientId())
		}
	}

	// dave, who is not in #Go, hears of none of it.
	dave := join(t, ts, "dave")
	for _, c := range []*client{alice, bob, carol} {
		expectJoined(t, c.name, c.next(t), "dave", false)
	}
	carol.send(t, sendReq("only Go", "Go", "", ""))
	for _, c := range []*client{carol, alice, bob} {
		expectChannelMessage(t, c.name, c.next(t), "Go", "carol", "only Go")
	}
	alice.mark(t, "mark")
	dave.expectMark(t, "alice", "mark")
}

func TestChannelRequestsRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.joinChannel(t, "bobs", "bobs")

	for _, tc := range []struct {
		name string
		req  *chatv1.ChatRequest
		code codes.Code
	}{
		{"join: empty name", joinChannelReq("", "j1"), codes.InvalidArgument},
		{"join: only #", joinChannelReq("#", "j2"), codes.InvalidArgument},
		{"join: two #", joinChannelReq("##go", "j3"), codes.InvalidArgument},
		{"join: space", joinChannelReq("go lang", "j4"), codes.InvalidArgument},
		{"join: slash", joinChannelReq("go/lang", "j5"), codes.InvalidArgument},
		{"join: emoji", joinChannelReq("😀", "j6"), codes.InvalidArgument},
		{"join: 33 characters", joinChannelReq(strings.Repeat("a", 33), "j7"), codes.InvalidArgument},
		{"join: general again", joinChannelReq("general", "j8"), codes.FailedPrecondition},
		{"join: #GENERAL again", joinChannelReq("#GENERAL", "j9"), codes.FailedPrecondition},
		{"leave: bad name", leaveChannelReq("go lang", "l1"), codes.InvalidArgument},
		{"leave: channel not joined", leaveChannelReq("bobs", "l2"), codes.FailedPrecondition},
		{"leave: no such channel", leaveChannelReq("nowhere", "l3"), codes.FailedPrecondition},
		{"send: bad channel name", sendReq("hi", "go lang", "", "s1"), codes.InvalidArgument},
		{"send: channel not joined", sendReq("hi", "bobs", "", "s2"), codes.FailedPrecondition},
		{"send: no such channel", sendReq("hi", "nowhere", "", "s3"), codes.NotFound},
		{"send: channel and recipient", sendReq("hi", "general", "bob", "s4"), codes.InvalidArgument},
	} {
		alice.send(t, tc.req)
		ev := alice.next(t)
		t.Logf("%s: %s", tc.name, ev.GetRejected().GetReason())
		expectRejected(t, "alice ("+tc.name+")", ev, tc.req.GetClientId(), tc.code)
	}
	// A name of exactly 32 characters is fine.
	long := strings.Repeat("b", 32)
	alice.joinChannel(t, long, long)

	// None of that reached bob, created a channel or took alice out of
	// one.
	alice.mark(t, "still in general")
	bob.expectMark(t, "alice", "still in general")
	counts, _ := listChannels(t, ts)
	if want := map[string]uint32{"general": 2, "bobs": 1, long: 1}; !maps.Equal(counts, want) {
		t.Errorf("ListChannels = %v; want %v", counts, want)
	}
}

// Leaving a channel tells every member, the leaver included, with the
// same event; the leaver gets nothing more of the channel.
func TestLeaveChannel(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	carol := join(t, ts, "carol")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "carol", false)
	alice.joinChannel(t, "room", "room")
	bob.joinChannel(t, "room", "room")
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")

	bob.send(t, leaveChannelReq("#ROOM", "l1"))
	left := bob.next(t)
	expectChannelLeft(t, "bob", left, "room", "bob")
	if ev := alice.next(t); !equalButSeq(ev, left) {
		t.Errorf("alice got %v; want the channel_left bob got, %v", ev, left)
	}
	if counts, _ := listChannels(t, ts); counts["room"] != 1 {
		t.Errorf("ListChannels = %v; want room with 1 member", counts)
	}

	alice.send(t, sendReq("bob is gone", "room", "", ""))
	expectChannelMessage(t, "alice", alice.next(t), "room", "alice", "bob is gone")
	bob.send(t, sendReq("let me back", "room", "", "b1"))
	expectRejected(t, "bob", bob.next(t), "b1", codes.FailedPrecondition)
	bob.send(t, leaveChannelReq("room", "b2"))
	expectRejected(t, "bob", bob.next(t), "b2", codes.FailedPrecondition)
	alice.mark(t, "mark")
	bob.expectMark(t, "alice", "mark")
	carol.expectMark(t, "alice", "mark") // never in room: saw neither join nor leave

	// An empty channel is still listed, with no members, and can be
	// joined again, with its history.
	alice.send(t, leaveChannelReq("room", ""))
	expectChannelLeft(t, "alice", alice.next(t), "room", "alice")
	if counts, _ := listChannels(t, ts); counts["room"] != 0 || len(counts) != 2 {
		t.Errorf("ListChannels = %v; want general and an empty room", counts)
	}
	entered := bob.joinChannel(t, "room", "room")
	if !slices.Equal(entered.members, []string{"bob"}) || len(entered.history) != 1 || entered.history[0].GetMessage().GetText() != "bob is gone" {
		t.Errorf("bob back in room: members %q, history %v; want [bob] and alice's message", entered.members, entered.history)
	}
}

// A user who goes offline is out of every channel: members get the
// user_left only, counts drop, and a newcomer does not see the user in the
// members.
func TestUserLeftLeavesChannels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		reason chatv1.LeaveReason
		drop   func(*testing.T, *client)
	}{
		{"logout", chatv1.LeaveReason_LEAVE_REASON_LOGOUT, func(t *testing.T, c *client) {
			c.send(t, leaveReq())
			c.drainToEnd(t, codes.OK)
		}},
		// A disconnected session is parked for a resume, still in its
		// channels, but not online: not shown as a member.
		{"disconnect", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, func(t *testing.T, c *client) { c.cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(nil))
			alice := join(t, ts, "alice")
			bob := join(t, ts, "bob")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			alice.joinChannel(t, "room", "room")
			bob.joinChannel(t, "room", "room")
			expectChannelJoined(t, "alice", alice.next(t), "room", "bob")

			tc.drop(t, bob)
			expectLeft(t, "alice", alice.next(t), "bob", tc.reason)
			alice.send(t, sendReq("after", "room", "", ""))
			// No channel_left for room (nor general) before this.
			expectChannelMessage(t, "alice", alice.next(t), "room", "alice", "after")
			counts, _ := listChannels(t, ts)
			if want := map[string]uint32{"general": 1, "room": 1}; !maps.Equal(counts, want) {
				t.Errorf("ListChannels = %v; want %v", counts, want)
			}
			carol := join(t, ts, "carol")
			if !slices.Equal(carol.general.members, []string{"alice", "carol"}) {
				t.Errorf("carol's general members = %q; want [alice carol]", carol.general.members)
			}
			if entered := carol.joinChannel(t, "room", "room"); !slices.Equal(entered.members, []string{"alice", "carol"}) {
				t.Errorf("carol's room members = %q; want [alice carol]", entered.members)
			}
		})
	}
}

// The channel list, as a stream answer and by the ListChannels rpc: every
// channel by name with how many users online are in it.
func TestListChannels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	if counts, order := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 0}) || len(order) != 1 {
		t.Errorf("ListChannels on an empty server = %v; want general alone, empty", order)
	}
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.joinChannel(t, "rust", "rust")
	alice.joinChannel(t, "go", "go")
	bob.joinChannel(t, "go", "go")
	expectChannelJoined(t, "alice", alice.next(t), "go", "bob")

	want := map[string]uint32{"general": 2, "go": 2, "rust": 1}
	counts, order := listChannels(t, ts)
	if !maps.Equal(counts, want) || !slices.Equal(order, []string{"general", "go", "rust"}) {
		t.Errorf("ListChannels = %v in order %q; want %v by name", counts, order, want)
	}

	before := bob.lastSeq
	bob.send(t, listChannelsReq("list-1"))
	ev := bob.next(t)
	cl := ev.GetChannelList()
	if cl == nil || ev.GetSeq() != 0 || cl.GetClientId() != "list-1" {
		t.Fatalf("bob got %v; want a channel_list with client_id list-1 and seq 0", ev)
	}
	if counts, order := channelCounts(cl.GetChannels()); !maps.Equal(counts, want) || !slices.Equal(order, []string{"general", "go", "rust"}) {
		t.Errorf("channel_list = %v in order %q; want %v by name", counts, order, want)
	}
	// The answer took no seq and reached nobody else.
	bob.mark(t, "after the list")
	if bob.lastSeq != before+1 {
		t.Errorf("bob's next event has seq %d; want %d: an answer is not numbered", bob.lastSeq, before+1)
	}
	alice.expectMark(t, "bob", "after the list")
}

// A session may be in at most MaxChannelsPerUser channels, general
// included; a refused join creates no channel.
func TestMaxChannelsPerUser(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxChannelsPerUser = 3 }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.joinChannel(t, "a", "a")
	alice.joinChannel(t, "b", "b")
	bob.joinChannel(t, "c", "c")

	alice.send(t, joinChannelReq("c", "c1"))
	expectRejected(t, "alice", alice.next(t), "c1", codes.ResourceExhausted)
	alice.send(t, joinChannelReq("d", "d1"))
	expectRejected(t, "alice", alice.next(t), "d1", codes.ResourceExhausted)
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 2, "a": 1, "b": 1, "c": 1}) {
		t.Errorf("ListChannels = %v; want no channel d, and alice not in c", counts)
	}
	// The limit is per user: bob can still join.
	bob.joinChannel(t, "a", "a")
	expectChannelJoined(t, "alice", alice.next(t), "a", "bob")

	alice.send(t, leaveChannelReq("b", ""))
	expectChannelLeft(t, "alice", alice.next(t), "b", "alice")
	alice.joinChannel(t, "c", "c")
	expectChannelJoined(t, "bob", bob.next(t), "c", "alice")
}

// At MaxChannels, creating a channel drops the empty channel that has been
// empty the longest, history and all; with none empty it is refused.
// General is never dropped.
func TestMaxChannels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxChannels = 4 }))
	alice := join(t, ts, "alice")
	for _, ch := range []string{"a", "b", "c"} {
		alice.joinChannel(t, ch, ch)
		alice.send(t, sendReq("in "+ch, ch, "", ""))
		expectChannelMessage(t, "alice", alice.next(t), ch, "alice", "in "+ch)
	}
	alice.send(t, joinChannelReq("d", "d1"))
	expectRejected(t, "alice", alice.next(t), "d1", codes.ResourceExhausted)
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 1, "a": 1, "b": 1, "c": 1}) {
		t.Errorf("ListChannels = %v; want general, a, b and c, unchanged by the refusal", counts)
	}

	// b is left first, then a: b has been empty the longest.
	for _, ch := range []string{"b", "a"} {
		alice.send(t, leaveChannelReq(ch, ""))
		expectChannelLeft(t, "alice", alice.next(t), ch, "alice")
	}
	alice.joinChannel(t, "d", "d")
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 1, "a": 0, "c": 1, "d": 1}) {
		t.Errorf("ListChannels = %v; want b dropped for d", counts)
	}
	// Joining an existing channel at the limit drops nothing.
	alice.joinChannel(t, "a", "a")
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 1, "a": 1, "c": 1, "d": 1}) {
		t.Errorf("ListChannels = %v; want a joined, nothing dropped", counts)
	}
	// b comes back as a new channel, under its new creator's spelling,
	// without the old history; c, the empty one now, is dropped for it.
	alice.send(t, leaveChannelReq("c", ""))
	expectChannelLeft(t, "alice", alice.next(t), "c", "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	if entered := bob.joinChannel(t, "B", "B"); len(entered.history) != 0 || !slices.Equal(entered.members, []string{"bob"}) {
		t.Errorf("bob creating B got members %q and history %v; want a new channel: [bob], no history", entered.members, entered.history)
	}
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 2, "a": 1, "B": 1, "d": 1}) {
		t.Errorf("ListChannels = %v; want c dropped for B", counts)
	}

	// General is the emptiest channel once everyone has left it, but it
	// stays: new sessions are put in it.
	alice.send(t, leaveChannelReq("general", ""))
	expectChannelLeft(t, "alice", alice.next(t), "general", "alice")
	expectChannelLeft(t, "bob", bob.next(t), "general", "alice")
	bob.send(t, leaveChannelReq("general", ""))
	expectChannelLeft(t, "bob", bob.next(t), "general", "bob")
	alice.send(t, leaveChannelReq("d", ""))
	expectChannelLeft(t, "alice", alice.next(t), "d", "alice")
	alice.joinChannel(t, "e", "e")
	if counts, _ := listChannels(t, ts); !maps.Equal(counts, map[string]uint32{"general": 0, "a": 1, "B": 1, "e": 1}) {
		t.Errorf("ListChannels = %v; want d dropped for e, general kept", counts)
	}
	carol := join(t, ts, "carol")
	if !slices.Equal(carol.general.members, []string{"carol"}) {
		t.Errorf("carol's general members = %q; want [carol]", carol.general.members)
	}
}
