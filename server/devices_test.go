package server_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// One user on several devices: each device its own session, the user once
// to everyone else.

// deviceReq is a join as name presenting deviceKey.
func deviceReq(name, deviceKey string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name, DeviceKey: deviceKey}}}
}

// joinDevice joins as another device of c's user, with the device key of
// c's welcome, on a connection of its own, and reads the welcome and
// general's catch-up.
func joinDevice(t *testing.T, ts *testServer, c *client) *client {
	t.Helper()
	key := c.welcome.GetWelcome().GetDeviceKey()
	if key == "" {
		t.Fatalf("%s's welcome has no device key", c.name)
	}
	d := joinWith(t, dial(t, ts.addr), c.name, deviceReq(c.name, key))
	if got := d.welcome.GetWelcome().GetDeviceKey(); got != key {
		t.Fatalf("the second device's welcome has device key %q; want the one it presented", got)
	}
	d.general = d.expectChannelCatchUp(t, "general")
	d.greeting = append(d.greeting, d.general.events()...)
	return d
}

// A taken name is refused unless the join shows the user's device key; with
// it, the join is a second session of the same user, which nobody else
// hears of.
func TestSecondDeviceNeedsTheDeviceKey(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	laptop := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", laptop.next(t), "bob", false)

	for _, tc := range []struct{ name, key string }{
		{"no key", ""},
		{"a wrong key", "not-the-key"},
		{"bob's key", bob.welcome.GetWelcome().GetDeviceKey()},
		{"alice's resume token", laptop.welcome.GetWelcome().GetResumeToken()},
	} {
		c := openStream(t, dial(t, ts.addr))
		c.send(t, deviceReq("alice", tc.key))
		if st := c.expectEnd(t, codes.AlreadyExists); !strings.Contains(st.Message(), "device key") {
			t.Errorf("%s: refusal %q; want it to say how another device joins", tc.name, st.Message())
		}
	}
	// Another letter case is the same name, and the same user.
	phone := joinWith(t, dial(t, ts.addr), "alice", deviceReq("ALICE", laptop.welcome.GetWelcome().GetDeviceKey()))
	w := phone.welcome.GetWelcome()
	if !proto.Equal(w.GetYou(), laptop.welcome.GetWelcome().GetYou()) {
		t.Errorf("the phone joined as %v; want the laptop's user %v", w.GetYou(), laptop.welcome.GetWelcome().GetYou())
	}
	if got := names(w.GetOnlineUsers()); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("the phone's welcome lists %v; want each user once: [alice bob]", got)
	}
	if w.GetResumeToken() == "" || w.GetResumeToken() == laptop.welcome.GetWelcome().GetResumeToken() {
		t.Errorf("the phone's resume token is %q; want one of its own", w.GetResumeToken())
	}
	if phone.welcome.GetSeq() != 1 {
		t.Errorf("the phone's welcome has seq %d; want 1: a session of its own", phone.welcome.GetSeq())
	}
	gen := phone.expectChannelCatchUp(t, "general")
	if !slices.Equal(gen.members, []string{"alice", "bob"}) {
		t.Errorf("the phone's #general lists %v; want [alice bob]", gen.members)
	}

	// Bob heard nothing of the phone: his next event is his own marker.
	bob.mark(t, "after the phone")
	laptop.expectMark(t, "bob", "after the phone")
	phone.expectMark(t, "bob", "after the phone")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("ListUsers = %v; want each user once", got)
	}
	if counts, _ := listChannels(t, ts); counts["general"] != 2 {
		t.Errorf("#general counts %d members; want 2 users", counts["general"])
	}
}

// What one device does or is sent reaches all of its user's devices, each
// numbered on its own without gaps: its own messages, private messages to
// and from the user, channels entered and left.
func TestOneUserEveryDevice(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	bob := join(t, ts, "bob")
	laptop := join(t, ts, "alice")
	expectJoined(t, "bob", bob.next(t), "alice", false)
	phone := joinDevice(t, ts, laptop)

	var laptopEvs, phoneEvs []*chatv1.ChatResponse
	both := func(check func(who string, ev *chatv1.ChatResponse)) {
		t.Helper()
		ev := laptop.next(t)
		check("laptop", ev)
		laptopEvs = append(laptopEvs, ev)
		ev = phone.next(t)
		check("phone", ev)
		phoneEvs = append(phoneEvs, ev)
	}

	// A message from the laptop: the phone sees it as its own.
	laptop.send(t, sayReq("from the laptop", "l1"))
	both(func(who string, ev *chatv1.ChatResponse) {
		m := expectChannelMessage(t, who, ev, "general", "alice", "from the laptop")
		if m.GetClientId() != "l1" {
			t.Errorf("%s: client_id %q; want the laptop's l1", who, m.GetClientId())
		}
	})
	expectChannelMessage(t, "bob", bob.next(t), "general", "alice", "from the laptop")

	// A channel entered on the phone is entered on the laptop too.
	phone.send(t, joinChannelReq("design", "j1"))
	for _, c := range []*client{laptop, phone} {
		cu := c.expectChannelCatchUp(t, "design")
		if !slices.Equal(cu.members, []string{"alice"}) {
			t.Errorf("#design's members on a device = %v; want [alice]", cu.members)
		}
		if c == laptop {
			laptopEvs = append(laptopEvs, cu.events()...)
		} else {
			phoneEvs = append(phoneEvs, cu.events()...)
		}
	}
	bob.send(t, joinChannelReq("design", ""))
	bobDesign := bob.expectChannelCatchUp(t, "design")
	if !slices.Equal(bobDesign.members, []string{"alice", "bob"}) {
		t.Errorf("bob's #design lists %v; want alice once, then bob", bobDesign.members)
	}
	both(func(who string, ev *chatv1.ChatResponse) { expectChannelJoined(t, who, ev, "design", "bob") })

	// Private messages to and from the user reach both devices.
	bob.send(t, sendReq("psst", "", "alice", "b1"))
	both(func(who string, ev *chatv1.ChatResponse) {
		if m := ev.GetMessage(); m.GetRecipient() != "alice" || m.GetSender() != "bob" || m.GetText() != "psst" {
			t.Errorf("%s: got %v; want bob's private message", who, ev)
		}
	})
	if ev := bob.next(t); ev.GetMessage().GetText() != "psst" {
		t.Errorf("bob: got %v; want his own copy", ev)
	}
	phone.send(t, sendReq("hi bob", "", "bob", "p1"))
	both(func(who string, ev *chatv1.ChatResponse) {
		if m := ev.GetMessage(); m.GetRecipient() != "bob" || m.GetSender() != "alice" || m.GetText() != "hi bob" {
			t.Errorf("%s: got %v; want the phone's private message to bob", who, ev)
		}
	})
	if ev := bob.next(t); ev.GetMessage().GetText() != "hi bob" {
		t.Errorf("bob: got %v; want alice's private message", ev)
	}
	// A private message to oneself goes to each device once.
	laptop.send(t, sendReq("note to self", "", "alice", ""))
	both(func(who string, ev *chatv1.ChatResponse) {
		if ev.GetMessage().GetText() != "note to self" {
			t.Errorf("%s: got %v; want the note", who, ev)
		}
	})

	// Left on the laptop: left on both.
	laptop.send(t, leaveChannelReq("design", ""))
	both(func(who string, ev *chatv1.ChatResponse) { expectChannelLeft(t, who, ev, "design", "alice") })
	expectChannelLeft(t, "bob", bob.next(t), "design", "alice")
	phone.send(t, sendReq("still here?", "design", "", "p2"))
	if ev := phone.next(t); ev.GetRejected().GetCode() != int32(codes.FailedPrecondition) {
		t.Errorf("phone: sending to #design after the laptop left it: got %v; want FAILED_PRECONDITION", ev)
	}

	expectSeqs(t, "laptop", laptopEvs, laptop.greeting[len(laptop.greeting)-1].GetSeq())
	expectSeqs(t, "phone", phoneEvs, phone.greeting[len(phone.greeting)-1].GetSeq())
}

// Others see a user come online with its first device and leave with its
// last: a device that drops or logs out while another is on changes
// nothing for them, and the last one's reason is the one they see.
func TestPresenceIsPerUser(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	bob := join(t, ts, "bob")
	laptop := join(t, ts, "alice")
	expectJoined(t, "bob", bob.next(t), "alice", false)
	phone := joinDevice(t, ts, laptop)
	tablet := joinDevice(t, ts, laptop)

	// The phone's connection drops; the tablet logs out.
	phone.cancel()
	tablet.send(t, leaveReq())
	if ev := tablet.next(t); ev.GetUserLeft().GetUser().GetUsername() != "alice" || ev.GetUserLeft().GetReason() != chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
		t.Errorf("tablet: got %v; want its own user_left as its last event", ev)
	}
	tablet.expectEnd(t, codes.OK)
	bob.mark(t, "alice is still here")
	laptop.expectMark(t, "bob", "alice is still here")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"bob", "alice"}) {
		t.Errorf("ListUsers = %v; want alice still online", got)
	}

	// The laptop, the last device online, disconnects: now she is gone.
	laptop.cancel()
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)

	// The phone comes back by its resume token: alice is back, in her
	// channels, and the phone is given what it missed.
	back := resumeStream(t, ts, phone, phone.lastSeq)
	if r := back.welcome.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("the phone's resume: %v; want RECOVERY_COMPLETE", r)
	}
	expectMessage(t, "phone", back.next(t), "bob", "alice is still here", "mark")
	expectJoined(t, "bob", bob.next(t), "alice", true)
	expectChannelJoined(t, "bob", bob.next(t), "general", "alice")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"bob", "alice"}) {
		t.Errorf("ListUsers = %v; want alice back once", got)
	}
}

// A device whose user is offline, with its other devices reconnecting, is
// let in by the device key and brings the user back.
func TestDeviceBringsItsUserBack(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	bob := join(t, ts, "bob")
	laptop := join(t, ts, "alice")
	expectJoined(t, "bob", bob.next(t), "alice", false)
	laptop.joinChannel(t, "design", "design")
	laptop.cancel()
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)

	phone := joinWith(t, dial(t, ts.addr), "alice", deviceReq("alice", laptop.welcome.GetWelcome().GetDeviceKey()))
	phone.expectChannelCatchUp(t, "general")
	phone.expectChannelCatchUp(t, "design")
	expectJoined(t, "bob", bob.next(t), "alice", true)
	expectChannelJoined(t, "bob", bob.next(t), "general", "alice")
}

// --max-devices-per-user bounds one user's sessions, counting those
// reconnecting, with a refusal that says so; a device that logs out makes
// room.
func TestMaxDevicesPerUser(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxDevicesPerUser = 2 }))
	laptop := join(t, ts, "alice")
	phone := joinDevice(t, ts, laptop)
	phone.cancel() // parked: still one of her two

	key := laptop.welcome.GetWelcome().GetDeviceKey()
	c := openStream(t, dial(t, ts.addr))
	c.send(t, deviceReq("alice", key))
	if st := c.expectEnd(t, codes.ResourceExhausted); st.Message() != "you are on 2 devices, the most allowed (counting those reconnecting): log out on one, or try again later" {
		t.Errorf("third device refused with %q", st.Message())
	}

	back := resumeStream(t, ts, phone, phone.lastSeq)
	back.send(t, leaveReq())
	back.drainToEnd(t, codes.OK)
	joinDevice(t, ts, laptop)
}

// With sign-in, a token for the user is proof enough: every device signed
// in as alice joins as alice, with no device key.
func TestSignedInDevices(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	var devices []*client
	for range 2 {
		c := openStream(t, dial(t, as.addr))
		c.name = "alice"
		c.send(t, joinReqToken("", as.token(t, "alice", time.Hour)))
		ev := c.next(t)
		if ev.GetWelcome().GetYou().GetUsername() != "alice" {
			t.Fatalf("signed-in device: got %v; want a welcome as alice", ev)
		}
		c.welcome = ev
		c.expectChannelCatchUp(t, "general")
		devices = append(devices, c)
	}
	if got := names(devices[1].welcome.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("the second device's welcome lists %v; want [alice]", got)
	}
	devices[1].send(t, sayReq("from the second", ""))
	for i, c := range devices {
		expectChannelMessage(t, []string{"first", "second"}[i], c.next(t), "general", "alice", "from the second")
	}
	// Bob, signed in as himself, cannot be alice on a second device.
	c := openStream(t, dial(t, as.addr))
	c.send(t, joinReqToken("alice", as.token(t, "bob", time.Hour)))
	c.expectEnd(t, codes.PermissionDenied)
}

// A user's devices on different nodes of a cluster: each hears what the
// other does, and a node's crash or stop with one of them on it changes
// nothing for the others while another device is on.
func TestClusterDevicesOnSeveralNodes(t *testing.T) {
	t.Parallel()
	ccfg := testClusterConfig(nil)
	_, nodes := startCluster(t, 3, testConfig(func(c *server.Config) { c.ResumeGrace = longGrace }), ccfg)
	laptop := join(t, nodes[0], "alice")
	bob := join(t, nodes[0], "bob")
	expectJoined(t, "alice", laptop.next(t), "bob", false)
	phone := joinDevice(t, nodes[1], laptop)
	tablet := joinDevice(t, nodes[2], laptop)
	// carol, alone on the phone's node, shows when that node is given up.
	carol := join(t, nodes[1], "carol")
	for _, c := range []*client{laptop, phone, tablet, bob} {
		expectJoined(t, c.name, c.next(t), "carol", false)
	}

	phone.send(t, joinChannelReq("design", ""))
	for _, c := range []*client{laptop, phone, tablet} {
		c.expectChannelCatchUp(t, "design")
	}
	laptop.say(t, "from n1", "l1")
	for _, c := range []*client{laptop, phone, tablet, bob, carol} {
		expectMessage(t, c.name, c.next(t), "alice", "from n1", "l1")
	}

	// Read on the phone: read on every node's devices.
	bob.say(t, "read me", "b1")
	var id string
	for _, c := range []*client{laptop, phone, tablet, bob, carol} {
		id = expectMessage(t, c.name, c.next(t), "bob", "read me", "b1").GetId()
	}
	phone.send(t, markReadReq("general", "", id, ""))
	for _, c := range []*client{laptop, phone, tablet} {
		expectRead(t, c.name, c.next(t), "general", "", id, 0)
	}

	// The phone's node crashes: when it is given up for dead, carol
	// leaves, and the phone is parked with nothing said of alice.
	lastSeq := phone.lastSeq
	nodes[1].node.Kill(t)
	expectLeft(t, "bob", bob.nextWithin(t, ccfg.NodeTimeout+waitTimeout), "carol", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	expectLeft(t, "laptop", laptop.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	expectLeft(t, "tablet", tablet.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)

	// The tablet's node stops as SIGTERM does: the tablet is held, and
	// nobody is told anything either.
	nodes[2].node.Stop(t)
	tablet.expectEnd(t, codes.Unavailable)
	laptop.say(t, "still on the laptop", "l2")
	expectMessage(t, "laptop", laptop.next(t), "alice", "still on the laptop", "l2")
	expectMessage(t, "bob", bob.next(t), "alice", "still on the laptop", "l2")
	if got := listUsers(t, nodes[0]); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("ListUsers = %v; want alice once, still online", got)
	}

	// The phone comes back on the laptop's node, with what it missed.
	back := resumeStream(t, nodes[0], phone, lastSeq)
	if r := back.welcome.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("the phone's resume: %v; want RECOVERY_COMPLETE", r)
	}
	expectLeft(t, "phone", back.next(t), "carol", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	expectMessage(t, "phone", back.next(t), "alice", "still on the laptop", "l2")
	bob.mark(t, "no flap")
	laptop.expectMark(t, "bob", "no flap")
	back.expectMark(t, "bob", "no flap")
}

// Devices of one user joining at once on two nodes are both admitted,
// while a stranger taking the name at the same instant is refused.
func TestClusterDeviceRace(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 2, testConfig(nil), testClusterConfig(nil))
	conns := []*grpc.ClientConn{dial(t, nodes[0].addr), dial(t, nodes[1].addr)}
	for round := range 10 {
		name := fmt.Sprintf("racer%02d", round)
		first := joinOn(t, conns[round%2], name)
		key := first.welcome.GetWelcome().GetDeviceKey()
		reqs := []*chatv1.ChatRequest{deviceReq(name, key), deviceReq(strings.ToUpper(name), key), joinReq(name)}
		streams := []*client{openStream(t, conns[0]), openStream(t, conns[1]), openStream(t, conns[round%2])}
		var wg sync.WaitGroup
		for i, c := range streams {
			c.name = name
			wg.Go(func() { c.send(t, reqs[i]) })
		}
		wg.Wait()
		for i, c := range streams[:2] {
			if ev := c.next(t); ev.GetWelcome().GetYou().GetUsername() != name {
				t.Fatalf("round %d: device %d got %v; want a welcome as %s", round, i, ev, name)
			}
		}
		streams[2].expectEnd(t, codes.AlreadyExists)
	}
}
