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
}

// startServer serves cfg until the test ends; its log goes to t.Log.
func startServer(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop) // runs last: after the server is down
	srv, addr := servertest.Start(t, cfg, slog.New(slog.NewTextHandler(logw, nil)))
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

// testConfig is the default configuration, changed by edit.
func testConfig(edit func(*server.Config)) server.Config {
	cfg := server.DefaultConfig()
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
	stream  grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	cancel  context.CancelFunc
	recvs   chan received
	welcome *chatv1.ChatResponse // set by join
	general *channelSnapshot     // set by join: general's members and history
}

type received struct {
	ev  *chatv1.ChatResponse
	err error
}

var errNoEvent = errors.New("nothing received in time")

// openStream starts a Chat stream on conn without joining.
func openStream(t *testing.T, conn *grpc.ClientConn) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
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

// joinOn joins as name on a new stream of conn, and checks the welcome.
func joinOn(t *testing.T, conn *grpc.ClientConn, name string) *client {
	t.Helper()
	c := openStream(t, conn)
	c.name = name
	c.send(t, joinReq(name))
	ev := c.next(t)
	if ev.GetWelcome() == nil || ev.GetWelcome().GetYou().GetUsername() != name {
		t.Fatalf("%s: first event after join = %v; want a welcome for %q", name, ev, name)
	}
	c.welcome = ev
	c.general = c.expectChannelSnapshot(t, "general")
	return c
}

// expectChannelSnapshot reads what a session gets on entering a channel:
// its own channel_joined, with the members, then the history it announces.
func (c *client) expectChannelSnapshot(t *testing.T, channel string) *channelSnapshot {
	t.Helper()
	ev := c.next(t)
	cj := ev.GetChannelJoined()
	if cj == nil || cj.GetChannel() != channel || cj.GetUser().GetUsername() != c.name || ev.GetSeq() == 0 {
		t.Fatalf("%s: got %v; want its own channel_joined for #%s, with a seq", c.name, ev, channel)
	}
	snap := &channelSnapshot{joined: ev, members: names(cj.GetMembers())}
	for range cj.GetHistoryCount() {
		h := c.next(t)
		if h.GetMessage() == nil || !h.GetHistory() || h.GetMessage().GetChannel() != cj.GetChannel() {
			t.Fatalf("%s: got %v; want a history message of #%s", c.name, h, channel)
		}
		snap.history = append(snap.history, h)
	}
	return snap
}

// channelSnapshot is what a session got on entering a channel.
type channelSnapshot struct {
	joined  *chatv1.ChatResponse
	members []string
	history []*chatv1.ChatResponse
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

// applyEvents checks one session's events: a welcome, then broadcasts with
// seqs welcome.seq+1, +2, … (rejections, seq 0, aside), each equal to what
// other sessions got under the same seq (recorded in bySeq), each message
// from someone online. It returns the online list the welcome and the
// joined/left deltas give, in join order.
func applyEvents(evs []*chatv1.ChatResponse, bySeq map[uint64]*chatv1.ChatResponse) ([]string, error) {
	if len(evs) == 0 || evs[0].GetWelcome() == nil {
		return nil, fmt.Errorf("first event is not a welcome: %v", evs)
	}
	online := names(evs[0].GetWelcome().GetOnlineUsers())
	want := evs[0].GetSeq()
	for _, ev := range evs[1:] {
		if ev.GetSeq() == 0 {
			if ev.GetRejected() == nil {
				return nil, fmt.Errorf("event %v has seq 0 but is not a rejection", ev)
			}
			continue
		}
		want++
		if ev.GetSeq() != want {
			return nil, fmt.Errorf("got seq %d after %d; want %d (no gaps, no repeats)", ev.GetSeq(), want-1, want)
		}
		if other, ok := bySeq[ev.GetSeq()]; ok && !proto.Equal(other, ev) {
			return nil, fmt.Errorf("seq %d is %v here but %v for another session", ev.GetSeq(), ev, other)
		}
		bySeq[ev.GetSeq()] = ev
		switch e := ev.GetEvent().(type) {
		case *chatv1.ChatResponse_UserJoined:
			name := e.UserJoined.GetUser().GetUsername()
			if slices.Contains(online, name) {
				return nil, fmt.Errorf("seq %d: %s joined but was already online", ev.GetSeq(), name)
			}
			online = append(online, name)
		case *chatv1.ChatResponse_UserLeft:
			name := e.UserLeft.GetUser().GetUsername()
			i := slices.Index(online, name)
			if i < 0 {
				return nil, fmt.Errorf("seq %d: %s left but was not online", ev.GetSeq(), name)
			}
			online = slices.Delete(online, i, i+1)
		case *chatv1.ChatResponse_Message:
			if !slices.Contains(online, e.Message.GetSender()) {
				return nil, fmt.Errorf("seq %d: message from %s, who is not online (%q)", ev.GetSeq(), e.Message.GetSender(), online)
			}
		default:
			return nil, fmt.Errorf("seq %d: unexpected event %v", ev.GetSeq(), ev)
		}
	}
	return online, nil
}
