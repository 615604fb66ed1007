package main

import (
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

func mentionEv(from, ch, to, text, clientID string, mentions ...string) *chatv1.ChatResponse {
	ev := messageEv(from, ch, to, text, clientID)
	ev.GetMessage().Mentions = mentions
	return ev
}

// On a terminal a message that names the user is in bold, with the bell
// if it is new; not the user's own, not a message naming others, and
// nothing of it in a pipe.
func TestMentionsStandOutOnATerminal(t *testing.T) {
	t.Parallel()
	for _, styled := range []bool{true, false} {
		st := newStateTest(t)
		if styled {
			st.styled()
		}
		st.feed(false, welcomeEv("alice", "bob", "alice"))
		st.feed(false, channelJoinedEv("general", "alice", 1, "bob", "alice"))
		st.feed(true, mentionEv("bob", "general", "", "earlier, @alice", "b0", "alice"))
		st.printed()
		st.feed(false, mentionEv("bob", "general", "", "lunch, @Alice?", "b1", "Alice"))
		st.feed(false, mentionEv("bob", "general", "", "@carol too", "b2", "carol"))
		st.feed(false, mentionEv("alice", "general", "", "note to @alice", "a1", "alice"))
		st.feed(false, replyEv("bob", "", "alice", "@alice!", "b3", &chatv1.ReplyTo{Id: "x", Sender: "carol", Excerpt: "hi"}))
		st.feed(false, mentionEv("bob", "", "alice", "@alice!", "b4", "alice"))
		var want string
		if styled {
			want = "15:04:05 \x1b[2m[2]\x1b[22m \x1b[1m#general bob\x1b[22m: \x1b[1mlunch, @Alice?\x1b[22m\a\n" +
				"15:04:05 \x1b[2m[3]\x1b[22m #general bob: @carol too\n" +
				"15:04:05 \x1b[2m[4]\x1b[22m #general alice: note to @alice\n" +
				"15:04:05 \x1b[2m[5]\x1b[22m [private] bob -> alice \x1b[2m(re carol: \"hi\")\x1b[22m: @alice!\n" +
				"15:04:05 \x1b[2m[6]\x1b[22m \x1b[1m[private] bob -> alice\x1b[22m: \x1b[1m@alice!\x1b[22m\a\n"
		} else {
			want = "15:04:05 #general bob: lunch, @Alice?\n" +
				"15:04:05 #general bob: @carol too\n" +
				"15:04:05 #general alice: note to @alice\n" +
				"15:04:05 [private] bob -> alice (re carol: \"hi\"): @alice!\n" +
				"15:04:05 [private] bob -> alice: @alice!\n"
		}
		if got := st.printed(); got != want {
			t.Errorf("styled %v: printed\n%q\nwant\n%q", styled, got, want)
		}
	}

	// History is highlighted, without the bell: it is not news.
	st := newStateTest(t).styled()
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 1, "bob", "alice"))
	st.feed(true, mentionEv("bob", "general", "", "earlier, @alice", "b0", "alice"))
	want := "15:04:05 \x1b[2m[1]\x1b[22m [history] \x1b[1m#general bob\x1b[22m: \x1b[1mearlier, @alice\x1b[22m\n"
	if got := st.printed(); !strings.Contains(got, want) {
		t.Errorf("a history message naming alice printed\n%q\nwant\n%q", got, want)
	}
}

// /channels counts, beside a channel's unread messages, those that name
// the user: from where the server's read states left it, the mentions
// received since, none once the user speaks there or reads it; and never
// more than unread.
func TestChannelsCountMentions(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	joined := channelJoinedEv("general", "alice", 1, "bob", "alice")
	joined.GetChannelJoined().Read = &chatv1.ReadState{Channel: "general", Unread: 3, Mentions: 1}
	st.feed(false, joined)
	st.feed(true, mentionEv("bob", "general", "", "counted already, @alice", "b0", "alice"))
	if got := st.printed(); !strings.Contains(got, "* you joined #general (2 members), your current channel, 3 unread, 1 mentioning you\n") {
		t.Errorf("joining printed\n%s\nwant the unread messages and mentions counted", got)
	}
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.feed(false, mentionEv("bob", "general", "", "@alice?", "b1", "alice"))
	st.feed(false, mentionEv("bob", "go", "", "@alice!", "g1", "alice"))
	st.feed(false, mentionEv("bob", "go", "", "@alice!!", "g2", "alice"))
	st.feed(false, mentionEv("bob", "go", "", "not you", "g3"))
	st.feed(false, mentionEv("alice", "go", "", "yes?", "g4"))                 // read up to here
	st.feed(false, mentionEv("bob", "go", "", "@alice, again", "g5", "alice")) // one more
	list := func(channels ...*chatv1.Channel) string {
		st.printed()
		st.feed(false, &chatv1.ChatResponse{Event: &chatv1.ChatResponse_ChannelList{ChannelList: &chatv1.ChannelList{Channels: channels}}})
		return st.printed()
	}
	want := "15:04:05 Channels (3):\n" +
		"  #general  2 members  4 unread, 2 mentioning you  (current)\n" +
		"  #go       1 member   1 unread, 1 mentioning you  (joined)\n" +
		"  #rust     1 member\n"
	if got := list(&chatv1.Channel{Name: "general", MemberCount: 2, Unread: 4}, &chatv1.Channel{Name: "go", MemberCount: 1, Unread: 1}, &chatv1.Channel{Name: "rust", MemberCount: 1}); got != want {
		t.Errorf("/channels printed\n%s\nwant\n%s", got, want)
	}

	// Another device read some of #general: its read state says what is
	// left. A count past unread is not believed.
	read := readEv("general", "", "b0m", 1)
	read.GetRead().Mentions = 1
	st.feed(false, read)
	want = "15:04:05 Channels (2):\n" +
		"  #general  2 members  1 unread, 1 mentioning you  (current)\n" +
		"  #go       1 member   1 unread, 1 mentioning you  (joined)\n"
	if got := list(&chatv1.Channel{Name: "general", MemberCount: 2, Unread: 1}, &chatv1.Channel{Name: "go", MemberCount: 1, Unread: 1}); got != want {
		t.Errorf("after a read event, /channels printed\n%s\nwant\n%s", got, want)
	}
	st.feed(false, readEv("general", "", "b1m", 0))
	st.feed(false, channelLeftEv("go", "alice"))
	want = "15:04:05 Channels (2):\n" +
		"  #general  2 members            (current)\n" +
		"  #go       1 member   1 unread\n"
	if got := list(&chatv1.Channel{Name: "general", MemberCount: 2}, &chatv1.Channel{Name: "go", MemberCount: 1, Unread: 1}); got != want {
		t.Errorf("once read and left, /channels printed\n%s\nwant\n%s", got, want)
	}
}

// The welcome's unread private conversations say how many of their
// messages name the user.
func TestUnreadPrivateMentions(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	w := welcomeEv("alice", "alice")
	w.GetWelcome().UnreadPrivate = []*chatv1.ReadState{{With: "bob", Unread: 3, Mentions: 2}, {With: "carol", Unread: 1}}
	st.feed(false, w)
	want := "Unread private messages: 3 from bob (2 mentioning you), 1 from carol (/history NAME shows them).\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("the welcome printed\n%s\nwant it to end with\n%s", got, want)
	}
}
