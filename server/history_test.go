package server_test

// Tests of the History call (history.go) over real TCP: scroll-back, paged
// from a chat's archive, or from what its channels keep in memory when it
// has none. What a session is shown on entering a channel is
// channel_history_test.go's.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/archive"
	"github.com/chatd/chatd/internal/disklog"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startArchived starts a chat kept in a data directory of the test's, with
// its archive, as chatd runs by default.
func startArchived(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	dir := t.TempDir()
	l, err := disklog.Open(disklog.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.Open(archive.Config{Dir: dir + "/archive"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); l.Close() }) // after the server is down
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	srv, addr := servertest.StartOn(t, cfg, server.SoloConfig(), l, slog.New(slog.NewTextHandler(logw, nil)), server.WithArchive(a))
	ts := &testServer{srv: srv, addr: addr}
	ts.admin = dial(t, addr)
	return ts
}

// pageBack pages req's conversation from the newest message back to the
// first, and returns the texts, oldest first.
func pageBack(t *testing.T, ts *testServer, req *chatv1.HistoryRequest) []string {
	t.Helper()
	cli := chatv1.NewChatServiceClient(ts.admin)
	var texts []string
	for range 100 {
		resp, err := cli.History(context.Background(), req)
		if err != nil {
			t.Fatalf("History(%v): %v", req, err)
		}
		var page []string
		for _, m := range resp.GetMessages() {
			if !m.GetHistory() || m.GetSeq() != 0 || m.GetMessage() == nil {
				t.Fatalf("a page's message %v; want a message marked as history, without seq", m)
			}
			page = append(page, m.GetMessage().GetText())
		}
		texts = append(page, texts...)
		if !resp.GetMore() {
			return texts
		}
		req.BeforeId = resp.GetMessages()[0].GetMessage().GetId()
	}
	t.Fatal("History never ended")
	return nil
}

// Every message of a channel is there to scroll back to, far past what the
// channel shows those who join it, a page at a time, oldest first within
// a page; and private messages to their two users only, each showing who
// they are with their session's token.
func TestScrollBack(t *testing.T) {
	ts := startArchived(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))
	alice := join(t, ts, "alice")
	alice.joinChannel(t, "design", "design")
	var said []string
	for i := range 250 {
		text := fmt.Sprint("idea ", i)
		alice.send(t, &chatv1.ChatRequest{ClientId: "c", Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Channel: "design", Text: text}}})
		said = append(said, text)
	}
	for range said {
		alice.next(t)
	}
	got := pageBack(t, ts, &chatv1.HistoryRequest{Channel: "design"})
	if strings.Join(got, "|") != strings.Join(said, "|") {
		t.Fatalf("paging #design back: %d messages; want the %d sent, in order", len(got), len(said))
	}
	got = pageBack(t, ts, &chatv1.HistoryRequest{Channel: "design", Limit: 7})
	if len(got) != len(said) {
		t.Fatalf("paging #design back 7 at a time: %d messages; want %d", len(got), len(said))
	}

	bob := join(t, ts, "bob")
	carol := join(t, ts, "carol")
	for i := range 3 {
		alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Recipient: "bob", Text: fmt.Sprint("psst ", i)}}})
	}
	for bob.next(t).GetMessage().GetText() != "psst 2" { // then he answers
	}
	bob.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Recipient: "alice", Text: "what?"}}})
	for bob.next(t).GetMessage().GetText() != "what?" {
	}
	want := "psst 0|psst 1|psst 2|what?"
	if got := pageBack(t, ts, &chatv1.HistoryRequest{With: "bob", ResumeToken: alice.welcome.GetWelcome().GetResumeToken()}); strings.Join(got, "|") != want {
		t.Errorf("alice's private messages with bob: %q; want %q", got, want)
	}
	if got := pageBack(t, ts, &chatv1.HistoryRequest{With: "ALICE", ResumeToken: bob.welcome.GetWelcome().GetResumeToken()}); strings.Join(got, "|") != want {
		t.Errorf("bob's private messages with alice: %q; want %q", got, want)
	}
	// Carol sees her own conversation with bob (none), never theirs.
	if got := pageBack(t, ts, &chatv1.HistoryRequest{With: "bob", ResumeToken: carol.welcome.GetWelcome().GetResumeToken()}); len(got) != 0 {
		t.Errorf("carol's private messages with bob: %q; want none", got)
	}

	cli := chatv1.NewChatServiceClient(ts.admin)
	for _, tc := range []struct {
		req  *chatv1.HistoryRequest
		code codes.Code
		want string
	}{
		{&chatv1.HistoryRequest{With: "bob"}, codes.Unauthenticated, "resume_token"},
		{&chatv1.HistoryRequest{With: "bob", ResumeToken: "forged"}, codes.Unauthenticated, "no session's"},
		{&chatv1.HistoryRequest{}, codes.InvalidArgument, "set channel"},
		{&chatv1.HistoryRequest{Channel: "design", With: "bob"}, codes.InvalidArgument, "not both"},
		{&chatv1.HistoryRequest{Channel: "design", Limit: 101}, codes.InvalidArgument, "at most 100"},
		{&chatv1.HistoryRequest{Channel: "design", BeforeId: "nope"}, codes.InvalidArgument, "no message id"},
		{&chatv1.HistoryRequest{Channel: "nowhere"}, codes.NotFound, "no channel #nowhere"},
		{&chatv1.HistoryRequest{Channel: "bad name!"}, codes.InvalidArgument, ""},
	} {
		_, err := cli.History(context.Background(), tc.req)
		if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("History(%v) = %v; want %v saying %q", tc.req, err, tc.code, tc.want)
		}
	}
}

// A chat kept in memory has no archive: a channel's scroll-back is what it
// keeps to show joiners, its last messages.
func TestScrollBackInMemory(t *testing.T) {
	ts := startServer(t, testConfig(func(c *server.Config) { c.MessageRate, c.HistorySize = 0, 10 }))
	alice := join(t, ts, "alice")
	for i := range 25 {
		alice.say(t, fmt.Sprint("m", i), "")
		alice.next(t)
	}
	got := pageBack(t, ts, &chatv1.HistoryRequest{Channel: "general", Limit: 4})
	if want := "m15|m16|m17|m18|m19|m20|m21|m22|m23|m24"; strings.Join(got, "|") != want {
		t.Fatalf("general's scroll-back in memory: %q; want its last 10, %q", got, want)
	}
}
