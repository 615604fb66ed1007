package server_test

import (
	"slices"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
)

// Read state: the last message a user read in each conversation, kept by
// the server and shared by the user's devices.

func markReadReq(channel, with, id, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_MarkRead{MarkRead: &chatv1.MarkRead{
		Channel: channel, With: with, MessageId: id,
	}}}
}

// expectRead checks that ev is a read event of conversation channel (or
// with), marked read up to id with unread messages after it.
func expectRead(t *testing.T, who string, ev *chatv1.ChatResponse, channel, with, id string, unread uint32) {
	t.Helper()
	r := ev.GetRead()
	if r == nil || r.GetChannel() != channel || r.GetWith() != with || r.GetLastReadId() != id || r.GetUnread() != unread || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want read #%s@%s up to %s with %d unread, and a seq", who, ev, channel, with, id, unread)
	}
}

// channelUnread asks c for the channel list and returns each channel's
// unread count.
func (c *client) channelUnread(t *testing.T) map[string]uint32 {
	t.Helper()
	c.send(t, listChannelsReq("list"))
	ev := c.next(t)
	if ev.GetChannelList() == nil {
		t.Fatalf("%s: got %v; want the channel list", c.name, ev)
	}
	out := map[string]uint32{}
	for _, ch := range ev.GetChannelList().GetChannels() {
		out[ch.GetName()] = ch.GetUnread()
	}
	return out
}

// A mark read on one device reaches every device of the user, moves only
// forward, shows in the channel list's unread counts and in what a new
// device is given, and a message the user sends reads its conversation.
func TestReadStateFollowsTheUser(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	laptop := join(t, ts, "alice")
	phone := joinDevice(t, ts, laptop)
	bob := join(t, ts, "bob")
	expectJoined(t, "laptop", laptop.next(t), "bob", false)
	expectJoined(t, "phone", phone.next(t), "bob", false)
	if r := laptop.general.joined.GetChannelJoined().GetRead(); r.GetChannel() != "general" || r.GetUnread() != 0 {
		t.Errorf("alice's #general catch-up read state = %v; want general with nothing unread", r)
	}

	var ids []string
	for _, text := range []string{"one", "two", "three"} {
		bob.say(t, text, "")
		ids = append(ids, bob.next(t).GetMessage().GetId())
		laptop.next(t)
		phone.next(t)
	}
	if got := phone.channelUnread(t); got["general"] != 3 {
		t.Errorf("the phone's channel list counts %d unread in #general; want 3", got["general"])
	}

	laptop.send(t, markReadReq("general", "", ids[1], "r1"))
	for _, c := range []*client{laptop, phone} {
		expectRead(t, c.name, c.next(t), "general", "", ids[1], 1)
	}
	// Backwards, or at the mark: no change, nothing sent.
	phone.send(t, markReadReq("general", "", ids[0], "r2"))
	laptop.send(t, markReadReq("general", "", ids[1], "r3"))
	bob.mark(t, "after the marks")
	laptop.expectMark(t, "bob", "after the marks")
	phone.expectMark(t, "bob", "after the marks")
	if got := phone.channelUnread(t); got["general"] != 2 {
		t.Errorf("the phone's channel list counts %d unread in #general; want 2 (three and the marker)", got["general"])
	}

	// A third device is told where she stands.
	tablet := joinDevice(t, ts, laptop)
	if r := tablet.general.joined.GetChannelJoined().GetRead(); r.GetLastReadId() != ids[1] || r.GetUnread() != 2 {
		t.Errorf("the tablet's #general read state = %v; want read up to %s, 2 unread", r, ids[1])
	}
	// So is a device that resumes with nothing kept.
	laptop.cancel()
	back := resumeStream(t, ts, laptop, 0)
	if gen := back.expectChannelCatchUp(t, "general"); gen.joined.GetChannelJoined().GetRead().GetUnread() != 2 {
		t.Errorf("the laptop, resumed afresh, has %v in #general; want 2 unread", gen.joined.GetChannelJoined().GetRead())
	}

	// Her own message reads the channel up to it.
	tablet.say(t, "caught up", "")
	for _, c := range []*client{back, phone, tablet, bob} {
		expectChannelMessage(t, c.name, c.next(t), "general", "alice", "caught up")
	}
	if got := back.channelUnread(t); got["general"] != 0 {
		t.Errorf("after her own message #general counts %d unread; want 0", got["general"])
	}
}

// Private conversations have read state too: a new device's welcome lists
// those with unread messages.
func TestPrivateReadState(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	var ids []string
	for _, text := range []string{"psst", "are you there?"} {
		bob.send(t, sendReq(text, "", "alice", ""))
		ids = append(ids, bob.next(t).GetMessage().GetId())
		alice.next(t)
	}
	phone := joinDevice(t, ts, alice)
	up := phone.welcome.GetWelcome().GetUnreadPrivate()
	if len(up) != 1 || up[0].GetWith() != "bob" || up[0].GetUnread() != 2 || up[0].GetLastReadId() != "" {
		t.Fatalf("the phone's welcome lists unread private conversations %v; want bob's, 2 unread", up)
	}
	phone.send(t, markReadReq("", "BOB", ids[0], ""))
	for _, c := range []*client{alice, phone} {
		expectRead(t, c.name, c.next(t), "", "bob", ids[0], 1)
	}
	// Her answer is unread for bob, his own messages never were.
	phone.send(t, sendReq("yes", "", "bob", ""))
	yes := bob.next(t).GetMessage().GetId()
	alice.next(t)
	phone.next(t)
	bob.send(t, markReadReq("", "alice", yes, ""))
	expectRead(t, "bob", bob.next(t), "", "alice", yes, 0)
}

// Bad marks are rejected with the usual codes, and the session goes on.
func TestMarkReadRefusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	alice.say(t, "hello", "")
	id := alice.next(t).GetMessage().GetId()
	alice.send(t, sendReq("note to self", "", "alice", ""))
	private := alice.next(t).GetMessage().GetId()
	for _, tc := range []struct {
		name string
		req  *chatv1.ChatRequest
		code codes.Code
	}{
		{"a channel she is not in", markReadReq("design", "", id, "x1"), codes.FailedPrecondition},
		{"no such id", markReadReq("general", "", "not-an-id", "x2"), codes.InvalidArgument},
		{"an id past the chat's last", markReadReq("general", "", "999999", "x3"), codes.InvalidArgument},
		{"both a channel and a user", markReadReq("general", "bob", id, "x4"), codes.InvalidArgument},
		{"neither", markReadReq("", "", id, "x5"), codes.InvalidArgument},
		{"nobody she talked to", markReadReq("", "nobody", id, "x6"), codes.NotFound},
		{"a message of another conversation", markReadReq("general", "", private, "x7"), codes.NotFound},
	} {
		alice.send(t, tc.req)
		expectRejected(t, tc.name, alice.next(t), tc.req.GetClientId(), tc.code)
	}
	alice.say(t, "still here", "")
	expectChannelMessage(t, "alice", alice.next(t), "general", "alice", "still here")
}

// With sign-in, a private message to a user offline is kept for them and
// delivered once on their next join, with its unread count in the welcome;
// past the inbox's bound it is refused. Without sign-in it is refused.
func TestOfflineInbox(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(func(c *server.Config) { c.OfflineInbox = 2 }))
	signIn := func(name string) *client {
		t.Helper()
		c := openStream(t, dial(t, as.addr))
		c.name = name
		c.send(t, joinReqToken("", as.token(t, name, time.Hour)))
		c.welcome = c.next(t)
		c.general = c.expectChannelCatchUp(t, "general")
		return c
	}
	alice := signIn("alice")
	alice.send(t, leaveReq())
	alice.drainToEnd(t, codes.OK)
	bob := signIn("bob")

	bob.send(t, sendReq("while you were out", "", "alice", "b1"))
	kept := bob.next(t)
	expectMessage(t, "bob", kept, "bob", "while you were out", "b1")
	bob.send(t, sendReq("and another", "", "alice", "b2"))
	expectMessage(t, "bob", bob.next(t), "bob", "and another", "b2")
	bob.send(t, sendReq("one too many", "", "alice", "b3"))
	expectRejected(t, "bob", bob.next(t), "b3", codes.ResourceExhausted)
	bob.send(t, sendReq("hello?", "", "carol", "b4"))
	expectRejected(t, "bob (to a user never seen)", bob.next(t), "b4", codes.NotFound)

	back := signIn("alice")
	if up := back.welcome.GetWelcome().GetUnreadPrivate(); len(up) != 1 || up[0].GetWith() != "bob" || up[0].GetUnread() != 2 {
		t.Errorf("alice's welcome lists unread %v; want 2 from bob", up)
	}
	got := back.next(t)
	expectMessage(t, "alice", got, "bob", "while you were out", "b1")
	if got.GetMessage().GetId() != kept.GetMessage().GetId() || !got.GetTime().AsTime().Equal(kept.GetTime().AsTime()) {
		t.Errorf("alice got %v; want the message as bob sent it: %v", got, kept)
	}
	expectMessage(t, "alice", back.next(t), "bob", "and another", "b2")
	expectJoined(t, "bob", bob.next(t), "alice", false)
	// Once: a second device is not given them again.
	second := signIn("alice")
	bob.mark(t, "nothing before this")
	second.expectMark(t, "bob", "nothing before this")
	back.expectMark(t, "bob", "nothing before this")
}

// Without sign-in, names are anyone's: nothing is kept for a user offline.
func TestNoInboxWithoutSignIn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.send(t, leaveReq())
	alice.drainToEnd(t, codes.OK)
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	bob.send(t, sendReq("hello?", "", "alice", "b1"))
	expectRejected(t, "bob", bob.next(t), "b1", codes.NotFound)
	if got := listUsers(t, ts); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("ListUsers = %v", got)
	}
}
