package server_test

// Tests of private messages over real TCP.

import (
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"

	"google.golang.org/grpc/codes"
)

// A private message reaches its recipient and comes back to its sender,
// and nobody else: not a third user in the same channels, not even one
// listening on the same connection.
func TestPrivateMessage(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	conn := dial(t, ts.addr)
	alice := joinOn(t, conn, "alice")
	bob := join(t, ts, "Bob")
	carol := joinOn(t, conn, "carol")
	expectJoined(t, "alice", alice.next(t), "Bob", false)
	expectJoined(t, "alice", alice.next(t), "carol", false)
	expectJoined(t, "Bob", bob.next(t), "carol", false)
	alice.joinChannel(t, "room", "room")
	bob.joinChannel(t, "room", "room")
	expectChannelJoined(t, "alice", alice.next(t), "room", "Bob")
	carol.joinChannel(t, "room", "room")
	expectChannelJoined(t, "alice", alice.next(t), "room", "carol")
	expectChannelJoined(t, "Bob", bob.next(t), "room", "carol")

	// The recipient may be written in any letter case; the message names
	// it as the user chose it.
	alice.send(t, sendReq("psst, Bob", "", "BOB", "p1"))
	echo := alice.next(t)
	got := bob.next(t)
	if echo.GetSeq() == 0 || got.GetSeq() == 0 {
		t.Errorf("alice's copy has seq %d, Bob's %d; want both numbered", echo.GetSeq(), got.GetSeq())
	}
	m := echo.GetMessage()
	if m.GetSender() != "alice" || m.GetRecipient() != "Bob" || m.GetChannel() != "" || m.GetText() != "psst, Bob" || m.GetClientId() != "p1" {
		t.Errorf("alice's echo %v; want her private message to Bob, with no channel", echo)
	}
	if !equalButSeq(echo, got) {
		t.Errorf("Bob got %v; want the message alice's echo shows, %v", got, echo)
	}

	bob.send(t, sendReq("hi alice", "", "alice", ""))
	reply := bob.next(t)
	if r := reply.GetMessage(); r.GetSender() != "Bob" || r.GetRecipient() != "alice" || r.GetChannel() != "" {
		t.Errorf("Bob's echo %v; want his private reply to alice", reply)
	}
	if ev := alice.next(t); !equalButSeq(ev, reply) {
		t.Errorf("alice got %v; want Bob's reply %v", ev, reply)
	}
	// A private message to oneself reaches oneself once.
	carol.send(t, sendReq("note to self", "", "carol", "self"))
	if ev := carol.next(t); ev.GetMessage().GetRecipient() != "carol" || ev.GetMessage().GetSender() != "carol" {
		t.Errorf("carol got %v; want her note to herself", ev)
	}

	// carol's whole stream up to a later marker: only the marker.
	alice.send(t, sendReq("room marker", "room", "", ""))
	expectChannelMessage(t, "carol", carol.next(t), "room", "alice", "room marker")
	for _, c := range []*client{alice, bob} {
		expectChannelMessage(t, c.name, c.next(t), "room", "alice", "room marker")
	}
}

func TestPrivateMessageRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	carol := join(t, ts, "carol")
	dave := join(t, ts, "dave")
	for _, name := range []string{"bob", "carol", "dave"} {
		expectJoined(t, "alice", alice.next(t), name, false)
	}
	// carol logs out; dave disconnects and is parked for a resume, which
	// does not make him reachable.
	carol.send(t, leaveReq())
	carol.drainToEnd(t, codes.OK)
	expectLeft(t, "alice", alice.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	dave.cancel()
	expectLeft(t, "alice", alice.next(t), "dave", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	expectJoined(t, "bob", bob.next(t), "carol", false)
	expectJoined(t, "bob", bob.next(t), "dave", false)
	expectLeft(t, "bob", bob.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	expectLeft(t, "bob", bob.next(t), "dave", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)

	for _, tc := range []struct {
		name string
		to   string
		code codes.Code
	}{
		{"never joined", "erin", codes.NotFound},
		{"logged out", "carol", codes.NotFound},
		{"disconnected", "dave", codes.NotFound},
		{"not a possible name", "no one", codes.NotFound},
	} {
		alice.send(t, sendReq("hello?", "", tc.to, tc.name))
		ev := alice.next(t)
		t.Logf("%s: %s", tc.name, ev.GetRejected().GetReason())
		expectRejected(t, "alice ("+tc.name+")", ev, tc.name, tc.code)
	}
	alice.send(t, sendReq("both", "general", "bob", "both"))
	expectRejected(t, "alice", alice.next(t), "both", codes.InvalidArgument)
	alice.send(t, sendReq("   ", "", "bob", "empty"))
	expectRejected(t, "alice", alice.next(t), "empty", codes.InvalidArgument)

	// None of it reached bob.
	alice.mark(t, "mark")
	bob.expectMark(t, "alice", "mark")
}
