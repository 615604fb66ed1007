package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestTextPrinterChannelEvents(t *testing.T) {
	t.Parallel()
	carol := &chatv1.User{Username: "carol", JoinTime: testTime}
	inGo := func(ch string) bool { return sameChannel(ch, "go") || sameChannel(ch, "general") }
	asBob := view{you: "bob", current: "go", joined: inGo}
	// ev stamps r as an event of the session.
	ev := func(r *chatv1.ChatResponse) *chatv1.ChatResponse {
		r.Seq, r.Time = 5, testTime
		return r
	}
	msg := func(m *chatv1.Message) *chatv1.ChatResponse {
		return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Message{Message: m}}
	}
	tests := []struct {
		name string
		ev   *chatv1.ChatResponse
		v    view
		want string
	}{
		{"channel message", ev(msg(&chatv1.Message{Sender: "alice", Text: "hi", Channel: "go"})), asBob, "15:04:05 #go alice: hi\n"},
		{"private message", ev(msg(&chatv1.Message{Sender: "alice", Text: "psst", Recipient: "bob"})), asBob, "15:04:05 [private] alice -> bob: psst\n"},
		{"message without channel", ev(msg(&chatv1.Message{Sender: "alice", Text: "hi"})), asBob, "15:04:05 alice: hi\n"},
		{
			name: "history message",
			ev: func() *chatv1.ChatResponse {
				r := ev(msg(&chatv1.Message{Sender: "alice", Text: "old", Channel: "go"}))
				r.History = true
				return r
			}(),
			v:    asBob,
			want: "15:04:05 [history] #go alice: old\n",
		},
		{
			name: "escapes in every part",
			ev:   ev(msg(&chatv1.Message{Sender: "mal\x1b[2J", Text: "x\x1b]0;t\x07", Recipient: "bob\r"})),
			v:    asBob,
			want: `15:04:05 [private] mal\x1b[2J -> bob\x0d: x\x1b]0;t\x07` + "\n",
		},
		{
			name: "you joined the current channel with history",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "go", User: bob, Members: []*chatv1.User{alice, bob}, HistoryCount: 3}}}),
			v:    asBob,
			want: "15:04:05 * you joined #go (2 members), your current channel\n-- history of #go (3 messages) --\n",
		},
		{
			name: "you joined another channel without history",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "rust", User: bob, Members: []*chatv1.User{bob}}}}),
			v:    asBob,
			want: "15:04:05 * you joined #rust (1 member)\n",
		},
		{
			name: "someone joined a channel",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "go", User: carol}}}),
			v:    asBob,
			want: "15:04:05 * carol joined #go\n",
		},
		{"someone left a channel", ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelLeft{ChannelLeft: &chatv1.ChannelLeft{Channel: "go", User: carol}}}), asBob, "15:04:05 * carol left #go\n"},
		{"you left a channel", ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelLeft{ChannelLeft: &chatv1.ChannelLeft{Channel: "go", User: bob}}}), asBob, "15:04:05 * you left #go\n"},
		{"resumed", ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_UserJoined{UserJoined: &chatv1.UserJoined{User: carol, Resumed: true}}}), asBob, "15:04:05 * carol reconnected\n"},
		{
			name: "channel list",
			ev: &chatv1.ChatResponse{Time: testTime, Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{Channels: []*chatv1.Channel{
				{Name: "general", MemberCount: 3}, {Name: "Go", MemberCount: 1}, {Name: "rust", MemberCount: 0},
			}}}},
			v: asBob,
			want: "15:04:05 Channels (3):\n" +
				"  #general  3 members  (joined)\n" +
				"  #Go       1 member   (current)\n" +
				"  #rust     0 members\n",
		},
		{
			name: "channel list with unread counts",
			ev: &chatv1.ChatResponse{Time: testTime, Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{Channels: []*chatv1.Channel{
				{Name: "general", MemberCount: 3, Unread: 12}, {Name: "Go", MemberCount: 1}, {Name: "rust", MemberCount: 0}, {Name: "ops", MemberCount: 2, Unread: 1},
			}}}},
			v: view{you: "bob", current: "go", joined: func(ch string) bool { return !sameChannel(ch, "rust") }},
			want: "15:04:05 Channels (4):\n" +
				"  #general  3 members  12 unread  (joined)\n" +
				"  #Go       1 member              (current)\n" +
				"  #rust     0 members\n" +
				"  #ops      2 members  1 unread   (joined)\n",
		},
		{
			name: "you joined a channel with messages unread",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "go", User: bob, Members: []*chatv1.User{alice, bob}, HistoryCount: 3, Read: &chatv1.ReadState{Channel: "go", Unread: 2}}}}),
			v:    asBob,
			want: "15:04:05 * you joined #go (2 members), your current channel, 2 unread\n-- history of #go (3 messages) --\n",
		},
		{
			name: "you joined a channel with everything read",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelJoined{ChannelJoined: &chatv1.ChannelJoined{Channel: "rust", User: bob, Members: []*chatv1.User{bob}, Read: &chatv1.ReadState{Channel: "rust"}}}}),
			v:    asBob,
			want: "15:04:05 * you joined #rust (1 member)\n",
		},
		{"a read mark moved", ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_Read{Read: &chatv1.ReadState{Channel: "go", LastReadId: "m9"}}}), asBob, ""},
		{
			name: "complete recovery",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: bob, Recovery: chatv1.Recovery_RECOVERY_COMPLETE}}}),
			v:    asBob,
			want: "15:04:05 * reconnected: nothing missed\n",
		},
		{
			name: "incomplete recovery",
			ev:   ev(&chatv1.ChatResponse{Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: bob, OnlineUsers: []*chatv1.User{alice, bob}, Recovery: chatv1.Recovery_RECOVERY_INCOMPLETE}}}),
			v:    asBob,
			want: "15:04:05 * reconnected, but some events were lost: state rebuilt\n15:04:05 Online (2): alice, bob (you)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			p := &textPrinter{w: &out, loc: time.UTC}
			if err := p.event(tt.ev, tt.v); err != nil {
				t.Fatalf("event: %v", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("event printed\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestTextPrinterChannelsAndMembers(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &textPrinter{w: &out, loc: time.UTC}
	if err := p.channels(&chatv1.ListChannelsResponse{Channels: []*chatv1.Channel{{Name: "general", MemberCount: 12}, {Name: "go\x1b", MemberCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.channels(&chatv1.ListChannelsResponse{}); err != nil {
		t.Fatal(err)
	}
	if err := p.members("go", []*chatv1.User{alice, bob}, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := p.historyEnd("go"); err != nil {
		t.Fatal(err)
	}
	want := "CHANNEL   MEMBERS\n" +
		"#general  12\n" +
		`#go\x1b` + "   1\n" +
		"No channels.\n" +
		"#go (2): alice, bob (you)\n" +
		"-- end of history --\n"
	if got := out.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
}

func TestJSONPrinterChannels(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	p := newPrinter(outputJSON, &stdout, &stderr)
	resp := &chatv1.ListChannelsResponse{Channels: []*chatv1.Channel{{Name: "general", MemberCount: 2}}}
	if err := p.channels(resp); err != nil {
		t.Fatal(err)
	}
	if err := p.historyEnd("general"); err != nil {
		t.Fatal(err)
	}
	if err := p.members("general", []*chatv1.User{alice}, "alice"); err != nil {
		t.Fatal(err)
	}
	got := &chatv1.ListChannelsResponse{}
	if err := protojson.Unmarshal(stdout.Bytes(), got); err != nil || strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("stdout %q is not one ListChannelsResponse: %v", stdout.String(), err)
	}
	if len(got.GetChannels()) != 1 || got.GetChannels()[0].GetMemberCount() != 2 {
		t.Errorf("stdout decodes to %v, want %v", got, resp)
	}
	if want := "#general (1): alice (you)\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q (no history marker in JSON mode, /who on stderr)", stderr.String(), want)
	}
}
