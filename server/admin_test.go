package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

const adminToken = "an-admin-token-that-nobody-could-guess-0123456789"

// admin is an admin service client calling with token.
type admin struct {
	cli   chatv1.AdminServiceClient
	token string
}

func newAdmin(t *testing.T, ts *testServer, token string) *admin {
	return &admin{cli: chatv1.NewAdminServiceClient(dial(t, ts.addr)), token: token}
}

func (a *admin) ctx(t *testing.T) context.Context {
	ctx := callCtx(t)
	if a.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.token)
	}
	return ctx
}

// Only admins may call the admin service: no token, another token, a
// user's sign-in token or a forged one are refused, and honest users
// carry on meanwhile.
func TestAdminOnlyForAdmins(t *testing.T) {
	t.Parallel()
	t.Run("no admins", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, testConfig(nil))
		_, err := newAdmin(t, ts, adminToken).cli.ListSessions(callCtx(t), &chatv1.ListSessionsRequest{})
		if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "--admin-token-file") {
			t.Errorf("a chat without admins: %v; want PERMISSION_DENIED saying how to have one", err)
		}
	})
	t.Run("admin token", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, testConfig(nil), server.WithAdminToken(adminToken))
		alice := join(t, ts, "alice")
		for _, tc := range []struct {
			token string
			code  codes.Code
		}{{"", codes.Unauthenticated}, {"guess", codes.Unauthenticated}, {adminToken + "x", codes.Unauthenticated}, {adminToken, codes.OK}} {
			a := newAdmin(t, ts, tc.token)
			_, err := a.cli.Kick(a.ctx(t), &chatv1.KickRequest{User: "nobody"})
			want := tc.code
			if want == codes.OK {
				want = codes.NotFound // an admin, kicking nobody
			}
			if got := status.Code(err); got != want {
				t.Errorf("token %q: Kick = %v; want %v", tc.token, err, want)
			}
			alice.say(t, "still talking", "")
			expectChannelMessage(t, "alice", alice.next(t), "general", "alice", "still talking")
		}
	})
	t.Run("sign-in", func(t *testing.T) {
		t.Parallel()
		clock := authtest.NewClock(time.Now())
		key, err := auth.ParseKey([]byte(authtest.Secret))
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(auth.Config{Key: key, Issuer: "test-idp", Clock: clock, AdminClaim: "chatd_admin"})
		if err != nil {
			t.Fatal(err)
		}
		logw := &testLogWriter{t: t}
		t.Cleanup(logw.stop)
		srv, addr := servertest.Start(t, testConfig(nil), slog.New(slog.NewTextHandler(logw, nil)), server.WithAuth(v))
		ts := &testServer{srv: srv, addr: addr}
		now := clock.Now()
		claims := func(sub string) authtest.Claims {
			return authtest.Claims{Subject: sub, Issuer: "test-idp", Expires: now.Add(time.Hour), IssuedAt: now}
		}
		admin := claims("root")
		admin.Extra = map[string]any{"chatd_admin": true}
		notQuite := claims("mallory")
		notQuite.Extra = map[string]any{"chatd_admin": "true"}
		forged := authtest.Sign(t, jwt.SigningMethodHS256, []byte("another secret, not the chat's, 32+ bytes long"), admin)
		for _, tc := range []struct {
			name, token string
			code        codes.Code
		}{
			{"a user's token", authtest.HS256(t, claims("bob")), codes.PermissionDenied},
			{"an admin claim that is a string", authtest.HS256(t, notQuite), codes.PermissionDenied},
			{"a forged admin token", forged, codes.Unauthenticated},
			{"an admin's token", authtest.HS256(t, admin), codes.OK},
		} {
			a := newAdmin(t, ts, tc.token)
			_, err := a.cli.ListBans(a.ctx(t), &chatv1.ListBansRequest{})
			if got := status.Code(err); got != tc.code {
				t.Errorf("%s: ListBans = %v; want %v", tc.name, err, tc.code)
			}
		}
	})
}

// A kick ends every device of the user, which the others see leave as
// kicked, and cannot be resumed; the user may join again.
func TestAdminKick(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil), server.WithAdminToken(adminToken))
	laptop := join(t, ts, "alice")
	phone := joinDevice(t, ts, laptop)
	bob := join(t, ts, "bob")
	a := newAdmin(t, ts, adminToken)
	if _, err := a.cli.Kick(a.ctx(t), &chatv1.KickRequest{User: "ALICE", Reason: "spam"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{laptop, phone} {
		_, st := c.drainToEnd(t, codes.PermissionDenied)
		if !strings.Contains(st.Message(), "spam") {
			t.Errorf("a kicked device ended with %q; want the reason", st.Message())
		}
	}
	expectLeft(t, "bob", bob.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_KICKED)
	back := joinWith(t, dial(t, ts.addr), "alice", resumeReq("alice", laptop.welcome.GetWelcome().GetResumeToken(), laptop.lastSeq))
	if r := back.welcome.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_INCOMPLETE {
		t.Errorf("a kicked session resumed: %v; want a new session (RECOVERY_INCOMPLETE)", r)
	}
	if _, err := a.cli.Kick(a.ctx(t), &chatv1.KickRequest{User: "bob", Reason: strings.Repeat("x", 201)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a reason of 201 characters: %v; want INVALID_ARGUMENT", err)
	}
}

// A ban removes the user and refuses its joins, by name and look-alike
// names, until it is lifted; ListBans lists it and ListSessions who is in.
func TestAdminBan(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil), server.WithAdminToken(adminToken))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	a := newAdmin(t, ts, adminToken)

	list, err := a.cli.ListSessions(a.ctx(t), &chatv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, u := range list.GetUsers() {
		who = append(who, fmt.Sprintf("%s:%d:%s", u.GetUser().GetUsername(), len(u.GetDevices()), u.GetDevices()[0].GetState()))
		if u.GetDevices()[0].GetAddress() == "" || u.GetDevices()[0].GetSince() == nil {
			t.Errorf("ListSessions: %v has no address or since", u)
		}
	}
	if !slices.Equal(who, []string{"alice:1:online", "bob:1:online"}) {
		t.Errorf("ListSessions = %v", who)
	}

	resp, err := a.cli.Ban(a.ctx(t), &chatv1.BanRequest{User: "bob", Duration: durationpb.New(time.Hour), Reason: "flooding"})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBan(); b.GetUser() != "bob" || b.GetBy() != "admin-token" || b.GetUntil() == nil {
		t.Errorf("Ban answered %v", b)
	}
	bob.drainToEnd(t, codes.PermissionDenied)
	expectLeft(t, "alice", alice.next(t), "bob", chatv1.LeaveReason_LEAVE_REASON_BANNED)
	for _, name := range []string{"bob", "BOB", "b0b"} {
		c := openStream(t, dial(t, ts.addr))
		c.send(t, joinReq(name))
		if st := c.expectEnd(t, codes.PermissionDenied); !strings.Contains(st.Message(), "flooding") {
			t.Errorf("%s joining while bob is banned: %q; want the ban's reason", name, st.Message())
		}
	}
	bans, err := a.cli.ListBans(a.ctx(t), &chatv1.ListBansRequest{})
	if err != nil || len(bans.GetBans()) != 1 || bans.GetBans()[0].GetReason() != "flooding" {
		t.Errorf("ListBans = %v, %v; want bob's", bans, err)
	}
	if _, err := a.cli.Unban(a.ctx(t), &chatv1.UnbanRequest{User: "Bob"}); err != nil {
		t.Fatal(err)
	}
	join(t, ts, "bob")
	if _, err := a.cli.Unban(a.ctx(t), &chatv1.UnbanRequest{User: "bob"}); status.Code(err) != codes.NotFound {
		t.Errorf("Unban of nobody banned: %v; want NOT_FOUND", err)
	}
}

// In a cluster a ban takes effect at one point of the chat's order on
// every node: each node's users see the banned user's messages up to the
// same one, then the user leave, banned, and nothing of it after.
func TestClusterBanAtOnePoint(t *testing.T) {
	t.Parallel()
	_, nodes := startClusterWith(t, 3, testConfig(func(c *server.Config) { c.MessageRate = 0 }), testClusterConfig(nil), server.WithAdminToken(adminToken))
	watchers := []*client{join(t, nodes[0], "alice"), join(t, nodes[1], "carol")}
	expectJoined(t, "alice", watchers[0].next(t), "carol", false)
	bob := join(t, nodes[2], "bob")
	for _, w := range watchers {
		expectJoined(t, w.name, w.next(t), "bob", false)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			if err := bob.stream.Send(sayReq(fmt.Sprint("m", i), "")); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Cleanup(wg.Wait)
	// Some of bob's messages are in before the ban.
	for _, w := range watchers {
		expectChannelMessage(t, w.name, w.next(t), "general", "bob", "m0")
	}
	a := newAdmin(t, nodes[0], adminToken)
	if _, err := a.cli.Ban(a.ctx(t), &chatv1.BanRequest{User: "bob", Reason: "flood"}); err != nil {
		t.Fatal(err)
	}
	var seen [][]string
	for _, w := range watchers {
		var got []string
		for {
			ev := w.next(t)
			if l := ev.GetUserLeft(); l != nil {
				if l.GetUser().GetUsername() != "bob" || l.GetReason() != chatv1.LeaveReason_LEAVE_REASON_BANNED {
					t.Fatalf("%s: got %v; want bob to leave, banned", w.name, ev)
				}
				break
			}
			got = append(got, expectChannelMessage(t, w.name, ev, "general", "bob", ev.GetMessage().GetText()).GetText())
		}
		seen = append(seen, got)
	}
	if !slices.Equal(seen[0], seen[1]) {
		t.Errorf("alice saw %d of bob's messages before his ban, carol %d: the ban is not at one point of the order", len(seen[0]), len(seen[1]))
	}
	// Nothing of bob's after it, on any node.
	watchers[1].mark(t, "after the ban")
	watchers[0].expectMark(t, "carol", "after the ban")
}

// A ban with a duration ends by itself, at the same point of the chat's
// clock on every node; until then no join, or look-alike's, gets in.
func TestBanEndsOnTime(t *testing.T) {
	t.Parallel()
	m := server.NewMachine(server.DefaultConfig())
	t0 := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	seq := uint64(0)
	apply := func(at time.Duration, cmd *clusterv1.Command) {
		t.Helper()
		seq++
		cmd.Node, cmd.Id = "n1", fmt.Sprint("n1-", seq)
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(server.Entry{Seq: seq, Time: t0.Add(at), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	joinAs := func(at time.Duration, name string) {
		apply(at, &clusterv1.Command{Action: &clusterv1.Command_Join{Join: &clusterv1.Join{Username: name, TokenHash: []byte(fmt.Sprint(name, at))}}})
	}
	apply(0, &clusterv1.Command{Action: &clusterv1.Command_Ban{Ban: &clusterv1.Ban{User: "bob", DurationMs: uint64(time.Hour / time.Millisecond)}}})
	for _, tc := range []struct {
		at   time.Duration
		name string
		in   bool
	}{
		{time.Minute, "bob", false},
		{59 * time.Minute, "B0B", false},
		{time.Hour, "bob", true},
	} {
		joinAs(tc.at, tc.name)
		if _, _, in := m.Attached(strings.ToLower(tc.name)); in != tc.in {
			t.Errorf("%s joining %s after the ban: in %v; want %v", tc.name, tc.at, in, tc.in)
		}
	}
}

// An admin publishes as the chat itself or as a bot, under names no user
// can have; refusals are as for a user's message.
func TestAdminPublish(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil), server.WithAdminToken(adminToken))
	alice := join(t, ts, "alice")
	a := newAdmin(t, ts, adminToken)
	resp, err := a.cli.Publish(a.ctx(t), &chatv1.PublishRequest{Text: "maintenance at noon, @alice"})
	if err != nil {
		t.Fatal(err)
	}
	m := expectChannelMessage(t, "alice", alice.next(t), "general", "chatd system", "maintenance at noon, @alice")
	if !m.GetSystem() || m.GetBot() != "" || m.GetId() != resp.GetMessageId() || !slices.Equal(m.GetMentions(), []string{"alice"}) {
		t.Errorf("the system's message: %v (answer %v)", m, resp)
	}
	if _, err := a.cli.Publish(a.ctx(t), &chatv1.PublishRequest{Bot: "weather", Recipient: "ALICE", Text: "rain at 5"}); err != nil {
		t.Fatal(err)
	}
	ev := alice.next(t)
	if m := ev.GetMessage(); m.GetSender() != "weather (bot)" || m.GetBot() != "weather" || m.GetSystem() || m.GetRecipient() != "alice" || ev.GetSeq() == 0 {
		t.Errorf("the bot's private message: %v", ev)
	}
	for _, tc := range []struct {
		name string
		req  *chatv1.PublishRequest
		code codes.Code
	}{
		{"no channel of that name", &chatv1.PublishRequest{Channel: "nowhere", Text: "x"}, codes.NotFound},
		{"a user not online", &chatv1.PublishRequest{Recipient: "bob", Text: "x"}, codes.NotFound},
		{"a bot name with a space", &chatv1.PublishRequest{Bot: "bad name", Text: "x"}, codes.InvalidArgument},
		{"no text", &chatv1.PublishRequest{Text: "  "}, codes.InvalidArgument},
		{"both a channel and a user", &chatv1.PublishRequest{Channel: "general", Recipient: "alice", Text: "x"}, codes.InvalidArgument},
	} {
		if _, err := a.cli.Publish(a.ctx(t), tc.req); status.Code(err) != tc.code {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.code)
		}
	}
	alice.say(t, "ok", "")
	expectChannelMessage(t, "alice", alice.next(t), "general", "alice", "ok")
}
