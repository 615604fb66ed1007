package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	testTime = timestamppb.New(time.Date(2026, 5, 4, 15, 4, 5, 0, time.UTC))
	alice    = &chatv1.User{Username: "alice", JoinTime: testTime}
	bob      = &chatv1.User{Username: "bob", JoinTime: testTime}
)

func TestTextPrinterEvent(t *testing.T) {
	t.Parallel()
	left := func(r chatv1.LeaveReason) *chatv1.ChatResponse {
		return &chatv1.ChatResponse{Seq: 3, Time: testTime, Event: &chatv1.ChatResponse_UserLeft{UserLeft: &chatv1.UserLeft{User: bob, Reason: r}}}
	}
	message := func(sender, text string) *chatv1.ChatResponse {
		return &chatv1.ChatResponse{Seq: 4, Time: testTime, Event: &chatv1.ChatResponse_Message{Message: &chatv1.Message{Id: "m1", Sender: sender, Text: text, ClientId: "c1"}}}
	}
	tests := []struct {
		name string
		ev   *chatv1.ChatResponse
		want string
	}{
		{
			name: "welcome",
			ev: &chatv1.ChatResponse{Seq: 2, Time: testTime, Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
				You: bob, OnlineUsers: []*chatv1.User{alice, bob},
			}}},
			want: "15:04:05 * you joined as bob\n15:04:05 Online (2): alice, bob (you)\n",
		},
		{
			name: "joined",
			ev:   &chatv1.ChatResponse{Seq: 3, Time: testTime, Event: &chatv1.ChatResponse_UserJoined{UserJoined: &chatv1.UserJoined{User: bob}}},
			want: "15:04:05 * bob joined\n",
		},
		{"left logout", left(chatv1.LeaveReason_LEAVE_REASON_LOGOUT), "15:04:05 * bob left (logged out)\n"},
		{"left disconnected", left(chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED), "15:04:05 * bob left (disconnected)\n"},
		{"left too slow", left(chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW), "15:04:05 * bob left (too slow)\n"},
		{"left shutdown", left(chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN), "15:04:05 * bob left (server shutdown)\n"},
		{"left unknown reason", left(chatv1.LeaveReason(42)), "15:04:05 * bob left (unknown reason)\n"},
		{"message", message("alice", "hello"), "15:04:05 alice: hello\n"},
		{"multi-line message", message("alice", "one\ntwo"), "15:04:05 alice: one\n" + indent + "two\n"},
		{"escape sequence", message("mallory", "\x1b]0;pwned\x07hi\x1b[2J"), `15:04:05 mallory: \x1b]0;pwned\x07hi\x1b[2J` + "\n"},
		{"carriage return", message("mallory", "fake\rreal"), `15:04:05 mallory: fake\x0dreal` + "\n"},
		{
			name: "rejected",
			ev:   &chatv1.ChatResponse{Time: testTime, Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{ClientId: "c1", Code: 8, Reason: "too many messages"}}},
			want: "15:04:05 ! too many messages\n",
		},
		{"unknown event", &chatv1.ChatResponse{Seq: 9, Time: testTime}, "15:04:05 ? an event this chatctl does not know (try a newer chatctl)\n"},
		{"no time", &chatv1.ChatResponse{Event: &chatv1.ChatResponse_UserJoined{UserJoined: &chatv1.UserJoined{User: bob}}}, "--:--:-- * bob joined\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			p := &textPrinter{w: &out, loc: time.UTC}
			if err := p.event(tt.ev, view{}); err != nil {
				t.Fatalf("event: %v", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("event printed\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, nl, want string
	}{
		{"plain text, ünïcödé ✓", "", "plain text, ünïcödé ✓"},
		{"tab\tkept", "", "tab\tkept"},
		{"\x1b[31mred", "", `\x1b[31mred`},
		{"bell\a del\x7f nul\x00", "", `bell\x07 del\x7f nul\x00`},
		{"c1 \u009b2J next\u0085line", "", `c1 \u009b2J next\u0085line`},
		{"bidi \u202eevil\u202c", "", `bidi \u202eevil\u202c`},
		{"line\u2028sep", "", `line\u2028sep`},
		{"bad \xff utf8", "", `bad \xff utf8`},
		{"a\nb", "", `a\x0ab`},
		{"a\nb\nc", "  ", "a\n  b\n  c"},
		{"literal U+FFFD \ufffd stays", "", "literal U+FFFD \ufffd stays"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, tt.nl); got != tt.want {
			t.Errorf("sanitize(%q, %q) = %q, want %q", tt.in, tt.nl, got, tt.want)
		}
		for _, r := range sanitize(tt.in, tt.nl) {
			if r == 0x1b || r == '\r' || (r >= 0x80 && r < 0xa0) {
				t.Errorf("sanitize(%q) kept control character %U", tt.in, r)
			}
		}
	}
}

func TestTextPrinterOnlineAndUsers(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &textPrinter{w: &out, loc: time.UTC}
	if err := p.online([]*chatv1.User{alice, {Username: "evil\x1b[2J"}}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := p.users(&chatv1.ListUsersResponse{Users: []*chatv1.User{alice, bob}}); err != nil {
		t.Fatal(err)
	}
	if err := p.users(&chatv1.ListUsersResponse{}); err != nil {
		t.Fatal(err)
	}
	want := `Online (2): alice (you), evil\x1b[2J` + "\n" +
		"NAME   JOINED\n" +
		"alice  2026-05-04 15:04:05\n" +
		"bob    2026-05-04 15:04:05\n" +
		"Nobody is online.\n"
	if got := out.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
}

func TestJSONPrinter(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	p := newPrinter(outputJSON, &stdout, &stderr)
	events := []*chatv1.ChatResponse{
		{Seq: 1, Time: testTime, Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: alice, OnlineUsers: []*chatv1.User{alice}}}},
		{Seq: 2, Time: testTime, Event: &chatv1.ChatResponse_Message{Message: &chatv1.Message{Id: "m", Sender: "alice", Text: "two\nlines \x1b", ClientId: "c"}}},
	}
	for _, ev := range events {
		if err := p.event(ev, view{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.online([]*chatv1.User{alice}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := p.note("a note"); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("got %d lines on stdout, want one per event:\n%s", len(lines), stdout.String())
	}
	for i, line := range lines {
		got := &chatv1.ChatResponse{}
		if err := protojson.Unmarshal([]byte(line), got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if !proto.Equal(got, events[i]) {
			t.Errorf("line %d decodes to %v, want %v", i, got, events[i])
		}
	}
	if want := "Online (1): alice (you)\na note\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want chatctl's own output %q", stderr.String(), want)
	}
}
