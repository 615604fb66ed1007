package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// waitTimeout bounds every wait for something the server should do
// promptly. It is generous, for busy machines under -race; tests that
// promise something quicker say so with their own bound.
const waitTimeout = 10 * time.Second

// testServer is a chatd server on a real TCP port of 127.0.0.1.
type testServer struct {
	srv   *server.Server
	addr  string
	admin *grpc.ClientConn // for ListUsers
	node  *servertest.Node // a cluster's node; nil for a single server
}

// startServer serves cfg, with opts, until the test ends; its log goes to
// t.Log.
func startServer(t *testing.T, cfg server.Config, opts ...server.Option) *testServer {
	t.Helper()
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop) // runs last: after the server is down
	srv, addr := servertest.Start(t, cfg, slog.New(slog.NewTextHandler(logw, nil)), opts...)
	ts := &testServer{srv: srv, addr: addr}
	ts.admin = dial(t, ts.addr)
	return ts
}

// testLogWriter passes the server's log to t.Log until the test is over.
type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// testConfig is the default configuration without its limits per client
// address, changed by edit. Every test client comes from 127.0.0.1, so
// those limits would make one test's clients pass or fail by how many
// there are; the tests of the limits themselves (limits_test.go) set them.
func testConfig(edit func(*server.Config)) server.Config {
	cfg := server.DefaultConfig()
	cfg.PerClient = admission.Config{TrustedProxies: cfg.PerClient.TrustedProxies}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%q): %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// client is one Chat stream. A goroutine receives from the stream, one
// response at a time, only as fast as the test asks (see recv), so a client
// nobody reads from is a client that stopped reading.
type client struct {
	name    string
	conn    *grpc.ClientConn
	stream  chatv1.ChatService_ChatClient
	cancel  context.CancelFunc
	recvs   chan received
	welcome *chatv1.ChatResponse // set by join
	general *channelCatchUp      // set by join: general's members and history
	// greeting is every event the join read: the welcome, then (for a new
	// session) general's channel_joined and history.
	greeting []*chatv1.ChatResponse
	// lastSeq is the seq of the last numbered event received: what a
	// resume asks to continue from.
	lastSeq uint64
}

type received struct {
	ev  *chatv1.ChatResponse
	err error
}

var errNoEvent = errors.New("nothing received in time")

// openStream starts a Chat stream on conn without joining.
func openStream(t *testing.T, conn *grpc.ClientConn) *client {
	t.Helper()
	return openStreamWith(t, conn, nil)
}

// openStreamWith is openStream with the stream's context changed by edit
// (to add metadata), if it is not nil.
func openStreamWith(t *testing.T, conn *grpc.ClientConn, edit func(context.Context) context.Context) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if edit != nil {
		ctx = edit(ctx)
	}
	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		cancel()
		t.Fatalf("open Chat stream: %v", err)
	}
	c := &client{conn: conn, stream: stream, cancel: cancel, recvs: make(chan received)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			ev, err := stream.Recv()
			select {
			case c.recvs <- received{ev, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		close(done)
		wg.Wait()
	})
	return c
}

// join opens a stream on a connection of its own and joins as name.
func join(t *testing.T, ts *testServer, name string) *client {
	t.Helper()
	return joinOn(t, dial(t, ts.addr), name)
}

// joinOn joins as name on a new stream of conn, and checks the welcome
// and general's catch-up that follow.
func joinOn(t *testing.T, conn *grpc.ClientConn, name string) *client {
	t.Helper()
	c := joinWith(t, conn, name, joinReq(name))
	c.general = c.expectChannelCatchUp(t, "general")
	c.greeting = append(c.greeting, c.general.events()...)
	return c
}

// joinWith opens a stream on conn, sends req (a join as name) and reads the
// welcome, and nothing after it.
func joinWith(t *testing.T, conn *grpc.ClientConn, name string, req *chatv1.ChatRequest) *client {
	t.Helper()
	c := openStream(t, conn)
	c.name = name
	c.send(t, req)
	ev := c.next(t)
	if ev.GetWelcome() == nil || ev.GetWelcome().GetYou().GetUsername() != name || ev.GetSeq() == 0 {
		t.Fatalf("%s: first event after join = %v; want a welcome for %q, with a seq", name, ev, name)
	}
	c.welcome = ev
	c.greeting = []*chatv1.ChatResponse{ev}
	return c
}

// resumeStream joins as c's user on a new connection with c's resume token and
// lastSeq, and returns the new stream after its welcome.
func resumeStream(t *testing.T, ts *testServer, c *client, lastSeq uint64) *client {
	t.Helper()
	return joinWith(t, dial(t, ts.addr), c.name, resumeReq(c.name, c.welcome.GetWelcome().GetResumeToken(), lastSeq))
}

// expectChannelCatchUp reads what a session gets on entering a channel:
// its own channel_joined, with the members, then the history it announces.
func (c *client) expectChannelCatchUp(t *testing.T, channel string) *channelCatchUp {
	t.Helper()
	ev := c.next(t)
	cj := ev.GetChannelJoined()
	if cj == nil || cj.GetChannel() != channel || cj.GetUser().GetUsername() != c.name || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want its own channel_joined for #%s, with a seq", c.name, ev, channel)
	}
	entered := &channelCatchUp{joined: ev, members: names(cj.GetMembers())}
	for range cj.GetHistoryCount() {
		h := c.next(t)
		if h.GetMessage() == nil || !h.GetHistory() || h.GetMessage().GetChannel() != cj.GetChannel() {
			t.Fatalf("%s: got %v; want a history message of #%s", c.name, h, channel)
		}
		entered.history = append(entered.history, h)
	}
	return entered
}

// channelCatchUp is what a session got on entering a channel.
type channelCatchUp struct {
	joined  *chatv1.ChatResponse
	members []string
	history []*chatv1.ChatResponse
}

// events returns the catch-up's events as they were received.
func (s *channelCatchUp) events() []*chatv1.ChatResponse {
	return append([]*chatv1.ChatResponse{s.joined}, s.history...)
}

func joinReq(name string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}}
}

func sayReq(text, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text}}}
}

func leaveReq() *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}}
}

func resumeReq(name, token string, lastSeq uint64) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name, ResumeToken: token, LastSeq: lastSeq}}}
}

// sendReq sends text to a channel or a recipient (or both, or neither).
func sendReq(text, channel, recipient, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{
		Text: text, Channel: channel, Recipient: recipient,
	}}}
}

func joinChannelReq(channel, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: channel}}}
}

func leaveChannelReq(channel, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_LeaveChannel{LeaveChannel: &chatv1.LeaveChannel{Channel: channel}}}
}

func listChannelsReq(clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_ListChannels{ListChannels: &chatv1.ListChannels{}}}
}

func (c *client) send(t *testing.T, req *chatv1.ChatRequest) {
	t.Helper()
	if err := c.stream.Send(req); err != nil {
		t.Fatalf("%s: Send(%v) = %v; want nil", c.name, req, err)
	}
}

func (c *client) say(t *testing.T, text, clientID string) {
	t.Helper()
	c.send(t, sayReq(text, clientID))
}

// recv returns the next response or the stream's end (io.EOF or a status
// error), or errNoEvent if neither comes within timeout.
func (c *client) recv(timeout time.Duration) (*chatv1.ChatResponse, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-c.recvs:
		if r.ev.GetSeq() != 0 {
			c.lastSeq = r.ev.GetSeq()
		}
		return r.ev, r.err
	case <-timer.C:
		return nil, errNoEvent
	}
}

// next returns the next event, failing the test if the stream ends or
// nothing comes within waitTimeout.
func (c *client) next(t *testing.T) *chatv1.ChatResponse {
	t.Helper()
	ev, err := c.recv(waitTimeout)
	if err != nil {
		t.Fatalf("%s: want an event, got %v", c.name, describe(err))
	}
	return ev
}

// nextWithin is next with a tighter bound.
func (c *client) nextWithin(t *testing.T, d time.Duration) *chatv1.ChatResponse {
	t.Helper()
	ev, err := c.recv(d)
	if err != nil {
		t.Fatalf("%s: want an event within %s, got %v", c.name, d, describe(err))
	}
	return ev
}

// expectEnd checks that the stream ends now, with no event before, with
// code (OK: a clean end, io.EOF), and returns its status.
func (c *client) expectEnd(t *testing.T, code codes.Code) *status.Status {
	t.Helper()
	ev, err := c.recv(waitTimeout)
	if ev != nil {
		t.Fatalf("%s: want the stream to end with %v, got event %v", c.name, code, ev)
	}
	return checkEnd(t, c.name, err, code)
}

// drainToEnd reads until the stream ends, checks its end as expectEnd
// does, and returns the events read before it.
func (c *client) drainToEnd(t *testing.T, code codes.Code) ([]*chatv1.ChatResponse, *status.Status) {
	t.Helper()
	var evs []*chatv1.ChatResponse
	for {
		ev, err := c.recv(waitTimeout)
		if err != nil {
			return evs, checkEnd(t, c.name, err, code)
		}
		evs = append(evs, ev)
	}
}

func checkEnd(t *testing.T, name string, err error, code codes.Code) *status.Status {
	t.Helper()
	switch {
	case err == errNoEvent:
		t.Fatalf("%s: want the stream to end with %v within %s; it did not", name, code, waitTimeout)
	case code == codes.OK:
		if err != io.EOF {
			t.Fatalf("%s: want the stream to end OK (io.EOF), got %v", name, describe(err))
		}
		return status.New(codes.OK, "")
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("%s: want the stream to end with %v, got %v", name, code, describe(err))
	}
	return st
}

// expectMessage checks that ev is a chat message from sender with text.
func expectMessage(t *testing.T, who string, ev *chatv1.ChatResponse, sender, text, clientID string) *chatv1.Message {
	t.Helper()
	m := ev.GetMessage()
	if m == nil || m.GetSender() != sender || m.GetText() != text || m.GetClientId() != clientID || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want message %.30q from %s with client_id %q and a seq", who, ev, text, sender, clientID)
	}
	return m
}

// expectLeft checks that ev is user_left for user with reason.
func expectLeft(t *testing.T, who string, ev *chatv1.ChatResponse, user string, reason chatv1.LeaveReason) {
	t.Helper()
	l := ev.GetUserLeft()
	if l == nil || l.GetUser().GetUsername() != user || l.GetReason() != reason || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want user_left %s %v with a seq", who, ev, user, reason)
	}
}

// expectRejected checks that ev is a rejection (seq 0) of clientID with code.
func expectRejected(t *testing.T, who string, ev *chatv1.ChatResponse, clientID string, code codes.Code) {
	t.Helper()
	r := ev.GetRejected()
	if r == nil || r.GetClientId() != clientID || codes.Code(r.GetCode()) != code || r.GetReason() == "" || ev.GetSeq() != 0 {
		t.Fatalf("%s: got %v; want rejected with client_id %q, code %v, a reason, seq 0", who, ev, clientID, code)
	}
}

func describe(err error) string {
	if st, ok := status.FromError(err); ok && err != nil {
		return fmt.Sprintf("status %v: %q", st.Code(), st.Message())
	}
	return fmt.Sprint(err)
}

// listUsers calls ListUsers on the server's admin connection.
func listUsers(t *testing.T, ts *testServer) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	resp, err := chatv1.NewChatServiceClient(ts.admin).ListUsers(ctx, &chatv1.ListUsersRequest{})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return names(resp.GetUsers())
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
// It is for state with no event to wait on, such as ListUsers.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; it did not happen", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func names(users []*chatv1.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.GetUsername()
	}
	return out
}

// joinChannel has c enter channel and reads its catch-up: the
// channel_joined (shown under the name want) and the history.
func (c *client) joinChannel(t *testing.T, channel, want string) *channelCatchUp {
	t.Helper()
	c.send(t, joinChannelReq(channel, ""))
	return c.expectChannelCatchUp(t, want)
}

// expectChannelJoined checks that ev tells c that user entered channel:
// a channel_joined with a seq, and no members or history, which are only
// for the user who entered.
func expectChannelJoined(t *testing.T, who string, ev *chatv1.ChatResponse, channel, user string) *chatv1.ChannelJoined {
	t.Helper()
	cj := ev.GetChannelJoined()
	if cj == nil || cj.GetChannel() != channel || cj.GetUser().GetUsername() != user || ev.GetSeq() == 0 ||
		len(cj.GetMembers()) != 0 || cj.GetHistoryCount() != 0 {
		t.Fatalf("%s: got %v; want channel_joined #%s by %s, with a seq and no members or history", who, ev, channel, user)
	}
	return cj
}

// expectChannelLeft checks that ev is channel_left of channel by user.
func expectChannelLeft(t *testing.T, who string, ev *chatv1.ChatResponse, channel, user string) {
	t.Helper()
	cl := ev.GetChannelLeft()
	if cl == nil || cl.GetChannel() != channel || cl.GetUser().GetUsername() != user || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want channel_left #%s by %s, with a seq", who, ev, channel, user)
	}
}

// expectJoined checks that ev is user_joined for user, resumed or not.
func expectJoined(t *testing.T, who string, ev *chatv1.ChatResponse, user string, resumed bool) *chatv1.User {
	t.Helper()
	j := ev.GetUserJoined()
	if j == nil || j.GetUser().GetUsername() != user || j.GetResumed() != resumed || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want user_joined %s (resumed %v) with a seq", who, ev, user, resumed)
	}
	return j.GetUser()
}

// expectChannelMessage checks that ev is a live message to channel.
func expectChannelMessage(t *testing.T, who string, ev *chatv1.ChatResponse, channel, sender, text string) *chatv1.Message {
	t.Helper()
	m := ev.GetMessage()
	if m == nil || m.GetChannel() != channel || m.GetRecipient() != "" || m.GetSender() != sender || m.GetText() != text ||
		ev.GetHistory() || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want live message %q from %s to #%s, with a seq", who, ev, text, sender, channel)
	}
	return m
}

// expectSeqs checks that evs are numbered from+1, from+2, … in order.
func expectSeqs(t *testing.T, who string, evs []*chatv1.ChatResponse, from uint64) {
	t.Helper()
	for i, ev := range evs {
		if want := from + uint64(i) + 1; ev.GetSeq() != want {
			t.Fatalf("%s: event %d (%v) has seq %d; want %d", who, i, ev, ev.GetSeq(), want)
		}
	}
}

// nextN returns c's next n events.
func (c *client) nextN(t *testing.T, n int) []*chatv1.ChatResponse {
	t.Helper()
	evs := make([]*chatv1.ChatResponse, n)
	for i := range evs {
		evs[i] = c.next(t)
	}
	return evs
}

// mark has c send text to general and reads c's echo: a marker that
// every member of general receives at the same point of the one order, so
// that a test can check that nothing came before it.
func (c *client) mark(t *testing.T, text string) *chatv1.ChatResponse {
	t.Helper()
	c.send(t, sendReq(text, "", "", "mark"))
	ev := c.next(t)
	expectChannelMessage(t, c.name, ev, "general", c.name, text)
	return ev
}

// expectMark checks that c's next event is the marker text from sender:
// nothing else reached c before it.
func (c *client) expectMark(t *testing.T, sender, text string) *chatv1.ChatResponse {
	t.Helper()
	ev := c.next(t)
	if ev.GetMessage().GetText() != text || ev.GetMessage().GetSender() != sender {
		t.Fatalf("%s: got %v; want nothing before the marker %q from %s", c.name, ev, text, sender)
	}
	return ev
}

// listChannels calls the ListChannels rpc and returns each channel's member
// count by name, and the names in the order listed.
func listChannels(t *testing.T, ts *testServer) (map[string]uint32, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	resp, err := chatv1.NewChatServiceClient(ts.admin).ListChannels(ctx, &chatv1.ListChannelsRequest{})
	if err != nil {
		t.Fatalf("ListChannels: %v", err)
	}
	return channelCounts(resp.GetChannels())
}

func channelCounts(chs []*chatv1.Channel) (map[string]uint32, []string) {
	counts := map[string]uint32{}
	var order []string
	for _, ch := range chs {
		counts[ch.GetName()] = ch.GetMemberCount()
		order = append(order, ch.GetName())
	}
	return counts, order
}

// equalButSeq reports whether two sessions' copies are the same event:
// equal but for the seq, which each session numbers its own way.
func equalButSeq(a, b *chatv1.ChatResponse) bool {
	a, b = proto.CloneOf(a), proto.CloneOf(b)
	a.Seq, b.Seq = 0, 0
	return proto.Equal(a, b)
}

// eventKey names an event the same way for every session that receives it,
// whatever its seq there: a message by its id, presence by the user and
// join time, a channel event by its channel, user and time. It is "" for
// what only one session receives (welcome, its own channel catch-up,
// rejections and channel lists).
func eventKey(ev *chatv1.ChatResponse) string {
	at := func(ts interface{ AsTime() time.Time }) int64 { return ts.AsTime().UnixNano() }
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_Message:
		return "message " + e.Message.GetId()
	case *chatv1.ChatResponse_UserJoined:
		u := e.UserJoined.GetUser()
		return fmt.Sprintf("user_joined %s %d", u.GetUsername(), at(u.GetJoinTime()))
	case *chatv1.ChatResponse_UserLeft:
		u := e.UserLeft.GetUser()
		return fmt.Sprintf("user_left %s %d", u.GetUsername(), at(u.GetJoinTime()))
	case *chatv1.ChatResponse_ChannelJoined:
		if len(e.ChannelJoined.GetMembers()) > 0 {
			return "" // the joiner's own catch-up
		}
		return fmt.Sprintf("channel_joined #%s %s %d", e.ChannelJoined.GetChannel(), e.ChannelJoined.GetUser().GetUsername(), at(ev.GetTime()))
	case *chatv1.ChatResponse_ChannelLeft:
		return fmt.Sprintf("channel_left #%s %s %d", e.ChannelLeft.GetChannel(), e.ChannelLeft.GetUser().GetUsername(), at(ev.GetTime()))
	}
	return ""
}

// sessionView is one session's picture of the chat, rebuilt from its
// events alone.
type sessionView struct {
	name     string
	online   []string            // who is online, in join order
	channels map[string][]string // the session's channels and their members, in the order they entered
	live     []*chatv1.ChatResponse
	keys     []string          // eventKey of each of live: shared events, history aside, in order
	messages []observedMessage // every live message, in order
}

// observedMessage is a live message as one session received it.
type observedMessage struct {
	key string
	msg *chatv1.Message
	// members is the channel's members as the session saw them when the
	// message arrived: exactly who should receive it.
	members []string
}

// applyEvents replays one session's events (from its welcome) and checks
// what chat.proto promises each session: a welcome, then seqs welcome.seq+1,
// +2, … with no gap or repeat (answers, seq 0, aside); presence that
// agrees with itself; channel_joined with members and then exactly
// history_count history messages on entering a channel; other users'
// channel_joined and channel_left only for the session's channels; channel
// messages only in the session's channels, from a member; private messages
// only to or from the session, between users online; no event twice.
func applyEvents(name string, evs []*chatv1.ChatResponse) (*sessionView, error) {
	if len(evs) == 0 || evs[0].GetWelcome() == nil {
		return nil, fmt.Errorf("first event is not a welcome: %v", evs)
	}
	v := &sessionView{
		name:     name,
		online:   names(evs[0].GetWelcome().GetOnlineUsers()),
		channels: map[string][]string{},
	}
	if !slices.Contains(v.online, name) {
		return nil, fmt.Errorf("welcome lists %q, without %s", v.online, name)
	}
	seen := map[string]bool{}
	seq := evs[0].GetSeq()
	history, historyOf := 0, "" // history messages still due, and their channel
	for _, ev := range evs[1:] {
		if ev.GetSeq() == 0 {
			if ev.GetRejected() == nil && ev.GetChannelList() == nil {
				return nil, fmt.Errorf("event %v has seq 0 but is not an answer (rejected, channel_list)", ev)
			}
			continue
		}
		seq++
		if ev.GetSeq() != seq {
			return nil, fmt.Errorf("got seq %d after %d; want %d (no gaps, no repeats): %v", ev.GetSeq(), seq-1, seq, ev)
		}
		if history > 0 {
			if m := ev.GetMessage(); m == nil || !ev.GetHistory() || m.GetChannel() != historyOf {
				return nil, fmt.Errorf("seq %d: %v; want one of %d more history messages of #%s", seq, ev, history, historyOf)
			}
			history--
			continue
		}
		if ev.GetHistory() {
			return nil, fmt.Errorf("seq %d: history %v outside a channel catch-up", seq, ev)
		}
		if k := eventKey(ev); k != "" {
			if seen[k] {
				return nil, fmt.Errorf("seq %d: %v received twice", seq, ev)
			}
			seen[k] = true
			v.live = append(v.live, ev)
			v.keys = append(v.keys, k)
		}
		if err := v.apply(ev, &history, &historyOf); err != nil {
			return nil, fmt.Errorf("seq %d: %v: %w", seq, ev, err)
		}
	}
	if history > 0 {
		return nil, fmt.Errorf("stream stops %d history messages short", history)
	}
	return v, nil
}

func (v *sessionView) apply(ev *chatv1.ChatResponse, history *int, historyOf *string) error {
	removeName := func(list []string, name string) ([]string, bool) {
		i := slices.Index(list, name)
		if i < 0 {
			return list, false
		}
		return slices.Delete(slices.Clone(list), i, i+1), true
	}
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_Welcome:
		return errors.New("a second welcome on one stream")
	case *chatv1.ChatResponse_UserJoined:
		u := e.UserJoined.GetUser().GetUsername()
		if slices.Contains(v.online, u) {
			return fmt.Errorf("%s joined but was online already", u)
		}
		v.online = append(v.online, u)
		// A new session is in general from its join; a resumed one
		// gets a channel_joined for each of its channels.
		if members, ok := v.channels["general"]; ok && !e.UserJoined.GetResumed() {
			v.channels["general"] = append(slices.Clone(members), u)
		}
	case *chatv1.ChatResponse_UserLeft:
		u := e.UserLeft.GetUser().GetUsername()
		var ok bool
		if v.online, ok = removeName(v.online, u); !ok {
			return fmt.Errorf("%s left but was not online", u)
		}
		for ch, members := range v.channels {
			v.channels[ch], _ = removeName(members, u)
		}
	case *chatv1.ChatResponse_ChannelJoined:
		cj := e.ChannelJoined
		ch, u := cj.GetChannel(), cj.GetUser().GetUsername()
		if u == v.name {
			if _, ok := v.channels[ch]; ok {
				return fmt.Errorf("entered #%s again", ch)
			}
			members := names(cj.GetMembers())
			if !slices.Contains(members, v.name) {
				return fmt.Errorf("#%s's members %q leave out the session", ch, members)
			}
			for _, m := range members {
				if !slices.Contains(v.online, m) {
					return fmt.Errorf("#%s's members %q include %s, who is not online", ch, members, m)
				}
			}
			v.channels[ch] = members
			*history, *historyOf = int(cj.GetHistoryCount()), ch
			return nil
		}
		members, ok := v.channels[ch]
		switch {
		case !ok:
			return fmt.Errorf("told of #%s, which the session is not in", ch)
		case !slices.Contains(v.online, u):
			return fmt.Errorf("%s entered #%s but is not online", u, ch)
		case slices.Contains(members, u):
			return fmt.Errorf("%s entered #%s but was in it already", u, ch)
		}
		v.channels[ch] = append(slices.Clone(members), u)
	case *chatv1.ChatResponse_ChannelLeft:
		ch, u := e.ChannelLeft.GetChannel(), e.ChannelLeft.GetUser().GetUsername()
		members, ok := v.channels[ch]
		if !ok {
			return fmt.Errorf("told of #%s, which the session is not in", ch)
		}
		if v.channels[ch], ok = removeName(members, u); !ok {
			return fmt.Errorf("%s left #%s but was not in it", u, ch)
		}
		if u == v.name {
			delete(v.channels, ch)
		}
	case *chatv1.ChatResponse_Message:
		m := e.Message
		om := observedMessage{key: eventKey(ev), msg: m}
		switch ch, to := m.GetChannel(), m.GetRecipient(); {
		case ch != "" && to != "", ch == "" && to == "":
			return errors.New("a message has a channel or a recipient, not both or neither")
		case ch != "":
			members, ok := v.channels[ch]
			if !ok {
				return fmt.Errorf("message to #%s, which the session is not in", ch)
			}
			if !slices.Contains(members, m.GetSender()) {
				return fmt.Errorf("message to #%s from %s, who is not in it (%q)", ch, m.GetSender(), members)
			}
			om.members = members
		default:
			if m.GetSender() != v.name && to != v.name {
				return fmt.Errorf("private message between others reached %s", v.name)
			}
			for _, u := range []string{m.GetSender(), to} {
				if !slices.Contains(v.online, u) {
					return fmt.Errorf("private message between %s and %s, who is not online", m.GetSender(), to)
				}
			}
		}
		v.messages = append(v.messages, om)
	default:
		return errors.New("unexpected event")
	}
	return nil
}

// sameOrder checks that the events two sessions both received came to
// them in the same order.
func sameOrder(a, b *sessionView) error {
	pos := make(map[string]int, len(b.keys))
	for i, k := range b.keys {
		pos[k] = i
	}
	last, lastKey := -1, ""
	for _, k := range a.keys {
		i, ok := pos[k]
		if !ok {
			continue
		}
		if i < last {
			return fmt.Errorf("%s got %q before %q; %s got them the other way round", a.name, lastKey, k, b.name)
		}
		last, lastKey = i, k
	}
	return nil
}
