package e2e_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/recvwindow"
	"github.com/chatd/chatd/web"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// endingChat is a ChatService that ends streams as chatd cannot be made to
// on cue. A user's first session is welcomed into general and then ended
// with the code its name is mapped to in first; a resume is ended before
// its welcome with the code in rejoin, if the name has one, and welcomed
// otherwise. It counts each user's joins.
type endingChat struct {
	chatv1.UnimplementedChatServiceServer
	first, rejoin map[string]codes.Code

	mu    sync.Mutex
	joins map[string][]*chatv1.Join
}

func (f *endingChat) Chat(stream grpc.BidiStreamingServer[chatv1.ChatRequest, chatv1.ChatResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	j := req.GetJoin()
	name := j.GetUsername()
	f.mu.Lock()
	f.joins[name] = append(f.joins[name], j)
	n := len(f.joins[name])
	f.mu.Unlock()
	send := func(seq uint64, ev *chatv1.ChatResponse) error {
		ev.Seq, ev.Time = seq, timestamppb.Now()
		return stream.Send(ev)
	}
	me := &chatv1.User{Username: name, JoinTime: timestamppb.Now()}
	if n == 1 {
		if err := send(1, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: me, OnlineUsers: []*chatv1.User{me}, ResumeToken: "tok-" + name}}}); err != nil {
			return err
		}
		if err := send(2, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "general", User: me, Members: []*chatv1.User{me}}}}); err != nil {
			return err
		}
		// Long enough for the page to draw the session.
		select {
		case <-time.After(300 * time.Millisecond):
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		return status.Error(f.first[name], "ended by the test")
	}
	if c, ok := f.rejoin[name]; ok {
		return status.Error(c, "refused by the test")
	}
	if err := send(j.GetLastSeq(), &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: me, ResumeToken: "tok-" + name, Recovery: chatv1.Recovery_RECOVERY_COMPLETE}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// joinsOf returns the joins name has sent.
func (f *endingChat) joinsOf(name string) []*chatv1.Join {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joins[name]
}

// serveEnding serves f, with the page, through the gateway chatd uses,
// until the test ends, and returns the page's URL.
func serveEnding(t *testing.T, f *endingChat) string {
	t.Helper()
	g := grpc.NewServer(grpc.ChainStreamInterceptor(recvwindow.StreamServerInterceptor))
	chatv1.RegisterChatServiceServer(g, f)
	gw, err := gateway.New(g, gateway.Config{
		KeepaliveTime:    time.Minute,
		KeepaliveTimeout: 20 * time.Second,
		MaxRecvMsgSize:   64 << 10,
		JoinTimeout:      10 * time.Second,
		Page:             web.Files(),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gw.Serve(lis)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		g.Stop()
		<-served
	})
	return "http://" + lis.Addr().String()
}

// The page takes a session back after any end of its stream that joining
// again may mend, as chatctl does: a broken websocket or a stream reset on
// the way may end it as UNKNOWN, INTERNAL or CANCELED as well as
// UNAVAILABLE. It does not after an end or a refusal that joining again
// would only meet again: it says why on the login form instead of trying
// for ever.
func TestBrowserReconnectsAfterWhatJoiningAgainMayMend(t *testing.T) {
	t.Parallel()
	f := &endingChat{
		first: map[string]codes.Code{
			"unknown":     codes.Unknown,
			"internal":    codes.Internal,
			"canceled":    codes.Canceled,
			"unavailable": codes.Unavailable,
			"slow":        codes.ResourceExhausted,
			"ended":       codes.FailedPrecondition,
			"invalid":     codes.InvalidArgument,
			"deadline":    codes.DeadlineExceeded,
			"refused":     codes.Unavailable,
			"taken":       codes.Unavailable,
		},
		rejoin: map[string]codes.Code{
			"refused": codes.FailedPrecondition,
			"taken":   codes.AlreadyExists,
		},
		joins: map[string][]*chatv1.Join{},
	}
	url := serveEnding(t, f)
	browser := newBrowser(t)
	resumes := []string{"unknown", "internal", "canceled", "unavailable", "slow"}
	stops := map[string]string{ // the login form's error
		"ended":    "Your session ended: ended by the test. Join again to go on.",
		"invalid":  "Your session ended: ended by the test. Join again to go on.",
		"deadline": "Your session ended: ended by the test. Join again to go on.",
		"refused":  "Could not join: refused by the test.",
		"taken":    `Your session ended while you were away, and the name "taken" is now taken. Choose another one.`,
	}
	tabs := map[string]*tab{}
	for name := range f.first {
		tb := openTab(t, browser, name, url)
		tb.login(t, name)
		tabs[name] = tb
	}

	for _, name := range resumes {
		tb := tabs[name]
		tb.waitLine(t, "#messages li.notice", "Reconnected as "+name+".")
		joins := f.joinsOf(name)
		if len(joins) != 2 || joins[1].GetResumeToken() != "tok-"+name || joins[1].GetLastSeq() != 2 {
			t.Errorf("%s (first stream ended %s): joins %v; want a second one resuming with tok-%s from seq 2", name, f.first[name], joins, name)
		}
	}
	for name, want := range stops {
		tb := tabs[name]
		tb.waitVisible(t, "login-view", true)
		tb.waitLine(t, "#login-error", want)
	}
	// Long enough for a retry, were the page to make one.
	time.Sleep(1500 * time.Millisecond)
	for name := range stops {
		want := 1
		if _, ok := f.rejoin[name]; ok {
			want = 2
		}
		if n := len(f.joinsOf(name)); n != want {
			t.Errorf("%s (first stream ended %s, rejoin %v): %d joins, want %d", name, f.first[name], describe(f.rejoin, name), n, want)
		}
	}
}

// describe is the rejoin code of name, or "welcomed".
func describe(m map[string]codes.Code, name string) string {
	if c, ok := m[name]; ok {
		return c.String()
	}
	return "welcomed"
}
