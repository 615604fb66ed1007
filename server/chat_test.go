package server_test

// Tests of the chat's basics over real TCP, as a client sees them: joining,
// messages, requests refused, leaving and disconnecting; and the calls
// beside Chat (ListUsers, health, reflection). chat_hub_test.go has the
// basics on a hub driven directly.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestJoinWelcomesAndAnnounces(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))

	alice := join(t, ts, "alice")
	if got := names(alice.welcome.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("alice's welcome lists %q; want [alice]", got)
	}
	bob := join(t, ts, "Bob")
	w := bob.welcome
	if got := names(w.GetWelcome().GetOnlineUsers()); !slices.Equal(got, []string{"alice", "Bob"}) {
		t.Errorf("Bob's welcome lists %q; want [alice Bob], in join order, Bob included", got)
	}
	// Each session numbers its own events, from its welcome: 1, then
	// general's channel_joined 2.
	for _, c := range []*client{alice, bob} {
		if c.welcome.GetSeq() != 1 || c.general.joined.GetSeq() != 2 {
			t.Errorf("%s: welcome seq %d, general's channel_joined seq %d; want 1 and 2 on a new session", c.name, c.welcome.GetSeq(), c.general.joined.GetSeq())
		}
		if w := c.welcome.GetWelcome(); w.GetRecovery() != chatv1.Recovery_RECOVERY_UNSPECIFIED || w.GetResumeToken() == "" {
			t.Errorf("%s: welcome %v; want a resume token and no recovery, for a join that asked for none", c.name, w)
		}
	}
	if alice.welcome.GetWelcome().GetResumeToken() == w.GetWelcome().GetResumeToken() {
		t.Error("alice and Bob got the same resume token")
	}
	if got := bob.general.members; !slices.Equal(got, []string{"alice", "Bob"}) {
		t.Errorf("Bob's general members = %q; want [alice Bob]", got)
	}
	// alice is told with the next number of her own, and nothing more:
	// Bob's user_joined makes him a member of general too.
	ev := alice.next(t)
	if !proto.Equal(ev.GetUserJoined().GetUser(), w.GetWelcome().GetYou()) || ev.GetUserJoined().GetResumed() || ev.GetSeq() != 3 {
		t.Fatalf("alice got %v; want user_joined %v, not resumed, with seq 3 (after her welcome and general's channel_joined)", ev, w.GetWelcome().GetYou())
	}
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "Bob"}) {
		t.Errorf("ListUsers = %q; want [alice Bob]", got)
	}

	// Bob gets nothing for his own join: his next event is the next one.
	alice.say(t, "hi Bob", "")
	if ev := bob.next(t); ev.GetSeq() != 3 || ev.GetMessage().GetText() != "hi Bob" {
		t.Errorf("Bob's first event after general's catch-up = %v; want alice's message with seq 3", ev)
	}
	if ev := alice.next(t); ev.GetSeq() != 4 || ev.GetMessage().GetText() != "hi Bob" {
		t.Errorf("alice's echo = %v; want her message with seq 4", ev)
	}
}

func TestJoinRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	conn := dial(t, ts.addr)
	alice := joinOn(t, conn, "alice")

	for _, tc := range []struct {
		name  string
		first *chatv1.ChatRequest // nil: close the sending side at once
		code  codes.Code
	}{
		{"message before join", sayReq("hello", ""), codes.FailedPrecondition},
		{"leave before join", leaveReq(), codes.FailedPrecondition},
		{"no action", &chatv1.ChatRequest{ClientId: "x"}, codes.FailedPrecondition},
		{"half-close before join", nil, codes.FailedPrecondition},
		{"empty username", joinReq(""), codes.InvalidArgument},
		{"username with space", joinReq("al ice"), codes.InvalidArgument},
		{"33-character username", joinReq(strings.Repeat("a", 33)), codes.InvalidArgument},
		{"emoji username", joinReq("😀"), codes.InvalidArgument},
		{"client_id over 64 bytes", &chatv1.ChatRequest{ClientId: strings.Repeat("x", 65), Action: joinReq("carol").Action}, codes.InvalidArgument},
		{"taken", joinReq("alice"), codes.AlreadyExists},
		{"taken in another case", joinReq("ALICE"), codes.AlreadyExists},
		{"taken in fullwidth", joinReq("ａｌｉｃｅ"), codes.AlreadyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openStream(t, conn)
			c.name = tc.name
			if tc.first == nil {
				if err := c.stream.CloseSend(); err != nil {
					t.Fatal(err)
				}
			} else {
				c.send(t, tc.first)
			}
			if st := c.expectEnd(t, tc.code); st.Message() == "" {
				t.Errorf("refusal %v has no message saying what to do", st.Code())
			}
		})
	}

	// None of that reached anyone: alice's next event is her own message.
	alice.say(t, "anyone?", "")
	expectMessage(t, "alice", alice.next(t), "alice", "anyone?", "")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("ListUsers = %q; want [alice]", got)
	}
}

func TestJoinTimeout(t *testing.T) {
	t.Parallel()
	const joinTimeout = 200 * time.Millisecond
	ts := startServer(t, testConfig(func(c *server.Config) { c.JoinTimeout = joinTimeout }))
	c := openStream(t, dial(t, ts.addr))
	start := time.Now()
	c.expectEnd(t, codes.DeadlineExceeded)
	if d := time.Since(start); d < joinTimeout {
		t.Errorf("stream ended after %s; want no sooner than the join timeout %s", d, joinTimeout)
	}
}

// One session is "1 session", not "1 sessions".
func TestServerFullOfOne(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxSessions = 1 }))
	join(t, ts, "a")
	c := openStream(t, dial(t, ts.addr))
	c.send(t, joinReq("b"))
	if st := c.expectEnd(t, codes.ResourceExhausted); st.Message() != "server is full (1 session, counting those reconnecting): try again later" {
		t.Errorf("refusal message %q; want it to count 1 session", st.Message())
	}
}

func TestServerFull(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxSessions = 2 }))
	a := join(t, ts, "a")
	join(t, ts, "b")
	a.next(t) // b joined

	c := openStream(t, dial(t, ts.addr))
	c.send(t, joinReq("c"))
	if st := c.expectEnd(t, codes.ResourceExhausted); !strings.Contains(st.Message(), "full") {
		t.Errorf("refusal message %q; want it to say the server is full", st.Message())
	}

	a.send(t, leaveReq())
	expectLeft(t, "a", a.next(t), "a", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	a.expectEnd(t, codes.OK)
	join(t, ts, "c") // room again
}

// The smallest queue the configuration allows still serves: what a join
// brings (the welcome, general's channel_joined) is not slowness.
func TestSmallestQueueServesJoins(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.QueueSize = 1 }))
	alice := join(t, ts, "alice")
	alice.mark(t, "hello")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	bob.mark(t, "hi")
	alice.expectMark(t, "bob", "hi")
}

func TestSecondJoinIsRejectedAndSessionGoesOn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	bob.send(t, &chatv1.ChatRequest{ClientId: "j2", Action: joinReq("robert").Action})
	expectRejected(t, "bob", bob.next(t), "j2", codes.FailedPrecondition)

	bob.say(t, "still me", "m1")
	expectMessage(t, "bob", bob.next(t), "bob", "still me", "m1")
	expectMessage(t, "alice", alice.next(t), "bob", "still me", "m1")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("ListUsers = %q; want [alice bob]", got)
	}
}

func TestMessagesReachEveryoneWithServerStampedSender(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "Alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	alice.say(t, "  hello, bob!\n", "c-1")
	mine := alice.next(t)
	m := expectMessage(t, "Alice", mine, "Alice", "hello, bob!", "c-1")
	if m.GetChannel() != "general" || m.GetRecipient() != "" {
		t.Errorf("message %v; want it sent to general, with no recipient", m)
	}
	theirs := bob.next(t)
	if !equalButSeq(mine, theirs) {
		t.Errorf("bob got %v; want the same event as the sender's echo %v", theirs, mine)
	}
	bob.say(t, "hi", "")
	m2 := expectMessage(t, "bob", bob.next(t), "bob", "hi", "")
	if ev := alice.next(t); !proto.Equal(ev.GetMessage(), m2) || ev.GetSeq() != mine.GetSeq()+1 {
		t.Errorf("Alice got %v; want bob's message with seq %d", ev, mine.GetSeq()+1)
	}
	if m.GetId() == "" || m.GetId() == m2.GetId() {
		t.Errorf("message ids %q and %q; want two different non-empty ids", m.GetId(), m2.GetId())
	}

	long := strings.Repeat("é", server.MaxTextBytes/2) // exactly 4096 bytes
	alice.say(t, long, "long")
	expectMessage(t, "Alice", alice.next(t), "Alice", long, "long")
	expectMessage(t, "bob", bob.next(t), "Alice", long, "long")
}

func TestBadRequestsAreRejectedAndSessionGoesOn(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	for _, tc := range []struct {
		name         string
		req          *chatv1.ChatRequest
		wantClientID string
		code         codes.Code
	}{
		{"empty text", sayReq("", "r1"), "r1", codes.InvalidArgument},
		{"white space only", sayReq(" \t\n ", "r2"), "r2", codes.InvalidArgument},
		{"control characters only", sayReq("\x00\x07\x1b", "r3"), "r3", codes.InvalidArgument},
		{"4097 bytes", sayReq(strings.Repeat("x", server.MaxTextBytes+1), "r4"), "r4", codes.InvalidArgument},
		// A client_id too long to echo is not echoed.
		{"client_id over 64 bytes", sayReq("hi", strings.Repeat("x", 65)), "", codes.InvalidArgument},
		{"no action", &chatv1.ChatRequest{ClientId: "r6"}, "r6", codes.InvalidArgument},
	} {
		alice.send(t, tc.req)
		ev := alice.next(t)
		t.Logf("%s: %v", tc.name, ev.GetRejected().GetReason())
		expectRejected(t, "alice ("+tc.name+")", ev, tc.wantClientID, tc.code)
	}
	// The session goes on, and nothing was broadcast: bob's next event is
	// the next message, right after general's catch-up.
	before := alice.lastSeq
	alice.say(t, "ok now", "r7")
	if ev := alice.next(t); ev.GetSeq() != before+1 || ev.GetMessage().GetText() != "ok now" {
		t.Errorf("alice got %v; want her message with seq %d (rejections take no seq)", ev, before+1)
	}
	ev := bob.next(t)
	expectMessage(t, "bob", ev, "alice", "ok now", "r7")
	if ev.GetSeq() != bob.general.joined.GetSeq()+1 {
		t.Errorf("bob's next event has seq %d; want %d, right after general's catch-up", ev.GetSeq(), bob.general.joined.GetSeq()+1)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// A rate this low refills nothing during the test, so exactly the
	// burst gets through however slow the machine is.
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate, c.MessageBurst = 0.001, 3 }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	for _, id := range []string{"1", "2", "3", "4", "5"} {
		alice.say(t, "spam "+id, id)
	}
	for _, id := range []string{"1", "2", "3"} {
		expectMessage(t, "alice", alice.next(t), "alice", "spam "+id, id)
	}
	for _, id := range []string{"4", "5"} {
		expectRejected(t, "alice", alice.next(t), id, codes.ResourceExhausted)
	}
	// The limit is alice's alone, and she stays online.
	bob.say(t, "not limited", "b1")
	for _, id := range []string{"1", "2", "3"} {
		expectMessage(t, "bob", bob.next(t), "alice", "spam "+id, id)
	}
	expectMessage(t, "bob", bob.next(t), "bob", "not limited", "b1")
	expectMessage(t, "alice", alice.next(t), "bob", "not limited", "b1")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("ListUsers = %q; want [alice bob]", got)
	}
}

func TestRateLimitOff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate, c.MessageBurst = 0, 1 }))
	alice := join(t, ts, "alice")
	const n = 50 // well past the default burst of 20
	for i := range n {
		alice.say(t, "msg", string(rune('A'+i)))
	}
	for i := range n {
		expectMessage(t, "alice", alice.next(t), "alice", "msg", string(rune('A'+i)))
	}
}

func TestOversizedRequestEndsStream(t *testing.T) {
	t.Parallel()
	const limit = server.MaxTextBytes + server.MaxClientIDBytes + 64 // the smallest allowed
	ts := startServer(t, testConfig(func(c *server.Config) { c.MaxRecvMsgSize = limit }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	bob.say(t, strings.Repeat("x", 2*limit), "big")
	bob.expectEnd(t, codes.ResourceExhausted)
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("ListUsers = %q; want [alice]", got)
	}

	// An oversized join is refused the same way.
	c := openStream(t, dial(t, ts.addr))
	c.send(t, joinReq(strings.Repeat("x", 2*limit)))
	c.expectEnd(t, codes.ResourceExhausted)
}

func TestLeave(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	bob.send(t, leaveReq())
	left := bob.next(t)
	expectLeft(t, "bob", left, "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	bob.expectEnd(t, codes.OK)
	ev := alice.next(t)
	if !equalButSeq(ev, left) {
		t.Errorf("alice got %v; want the same user_left bob LOGOUT bob got, %v", ev, left)
	}
	if got := listUsers(t, ts); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("ListUsers = %q; want [alice]", got)
	}
	join(t, ts, "bob") // the name is free again
}

func TestHalfCloseIsLogoutAfterQueuedEvents(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	alice.next(t) // bob joined

	// bob sends more than flow control lets through while he is not
	// reading, then closes his side: most echoes are still queued on the
	// server when it sees the half-close, and must all be sent first.
	const n = 100 // of 4 KB: 400 KB, several times the 64 KiB windows
	big := strings.Repeat("x", 4000)
	for i := range n {
		bob.say(t, big, fmt.Sprint(i))
	}
	if err := bob.stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, alice} {
		for i := range n {
			expectMessage(t, c.name, c.next(t), "bob", big, fmt.Sprint(i))
		}
		expectLeft(t, c.name, c.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
	}
	bob.expectEnd(t, codes.OK)
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	// The spec promises "within a second"; the bound is looser for busy
	// machines, but far below any keepalive, so only the client's own
	// cancel or close can explain it.
	const promptly = 3 * time.Second
	for _, tc := range []struct {
		name string
		drop func(*client)
	}{
		{"cancel stream", func(c *client) { c.cancel() }},
		{"close connection", func(c *client) { _ = c.conn.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(nil))
			alice := join(t, ts, "alice")
			bob := join(t, ts, "bob")
			alice.next(t) // bob joined

			start := time.Now()
			tc.drop(bob)
			expectLeft(t, "alice", alice.nextWithin(t, promptly), "bob", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
			t.Logf("disconnect seen after %s", time.Since(start).Round(time.Millisecond))
			if got := listUsers(t, ts); !slices.Equal(got, []string{"alice"}) {
				t.Errorf("ListUsers = %q; want [alice]", got)
			}
		})
	}
}

func TestListUsersInJoinOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	if got := listUsers(t, ts); len(got) != 0 {
		t.Errorf("ListUsers on an empty server = %q; want none", got)
	}
	conn := dial(t, ts.addr) // one connection may carry many sessions
	var cs []*client
	for _, name := range []string{"carol", "Alice", "bob"} {
		cs = append(cs, joinOn(t, conn, name))
	}
	if got := listUsers(t, ts); !slices.Equal(got, []string{"carol", "Alice", "bob"}) {
		t.Errorf("ListUsers = %q; want [carol Alice bob], in join order", got)
	}
	cs[1].send(t, leaveReq())
	cs[1].drainToEnd(t, codes.OK)
	joinOn(t, conn, "alice")
	if got := listUsers(t, ts); !slices.Equal(got, []string{"carol", "bob", "alice"}) {
		t.Errorf("ListUsers = %q; want [carol bob alice]", got)
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	conn := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	for _, svc := range []string{"", "chat.v1.ChatService"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, %v; want SERVING", svc, resp, err)
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"chat.v1.ChatService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %q; want it to include %s", services, want)
		}
	}
	_ = stream.CloseSend()
}

// rawCodec sends []byte as they are, so that a test can put bytes on the
// wire that no protobuf library would produce.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

// Bytes that are not a ChatRequest end the stream with gRPC's own status,
// which says so, and the server carries on.
func TestUndecodableRequest(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	conn := dial(t, ts.addr, grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	stream, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/chat.v1.ChatService/Chat")
	if err != nil {
		t.Fatal(err)
	}
	// Field 1 (client_id, a string) holding invalid UTF-8.
	if err := stream.SendMsg([]byte{0x0a, 0x02, 0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	var reply []byte
	err = stream.RecvMsg(&reply)
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "failed to unmarshal") {
		t.Errorf("undecodable request: %v; want gRPC's INTERNAL saying it failed to unmarshal the request", describe(err))
	}
	alice := join(t, ts, "alice") // the server is fine
	alice.say(t, "still here", "")
	expectMessage(t, "alice", alice.next(t), "alice", "still here", "")
}
