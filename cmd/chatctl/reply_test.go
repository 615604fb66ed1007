package main

import (
	"fmt"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

func replyEv(from, ch, to, text, clientID string, original *chatv1.ReplyTo) *chatv1.ChatResponse {
	ev := messageEv(from, ch, to, text, clientID)
	ev.GetMessage().ReplyTo = original
	return ev
}

// styled makes the session print as on a terminal.
func (st *stateTest) styled() *stateTest {
	st.s.out.(*textPrinter).styled = true
	return st
}

// On a terminal every message shows a number, dimmed, that /reply takes:
// history messages too, and a message shown again keeps its number. A
// reply quotes what it answers, with its number if it has one.
func TestShortIDsOnATerminal(t *testing.T) {
	t.Parallel()
	st := newStateTest(t).styled()
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 1, "bob", "alice"))
	st.feed(true, messageEv("bob", "general", "", "from before", "b0"))
	st.feed(false, messageEv("bob", "general", "", "lunch?", "b1"))
	st.feed(false, replyEv("alice", "general", "", "yes", "a1", &chatv1.ReplyTo{Id: "b1m", Sender: "bob", Excerpt: "lunch?"}))
	st.feed(false, replyEv("bob", "", "alice", "psst", "b2", &chatv1.ReplyTo{Id: "unseen", Sender: "carol", Excerpt: "a message\nfrom before"}))
	st.feed(true, messageEv("bob", "general", "", "lunch?", "b1")) // shown again
	want := "15:04:05 * you joined #general (2 members), your current channel\n" +
		"-- history of #general (1 message) --\n" +
		"15:04:05 \x1b[2m[1]\x1b[22m [history] #general bob: from before\n" +
		"-- end of history --\n" +
		"15:04:05 \x1b[2m[2]\x1b[22m #general bob: lunch?\n" +
		"15:04:05 \x1b[2m[3]\x1b[22m #general alice \x1b[2m(re [2] bob: \"lunch?\")\x1b[22m: yes\n" +
		"15:04:05 \x1b[2m[4]\x1b[22m [private] bob -> alice \x1b[2m(re carol: \"a message from before\")\x1b[22m: psst\n" +
		"15:04:05 \x1b[2m[2]\x1b[22m [history] #general bob: lunch?\n"
	if got := st.printed(); !strings.HasSuffix(got, want) {
		t.Errorf("printed\n%q\nwant it to end with\n%q", got, want)
	}
}

// In a pipe nothing shows a number (nobody types /reply there), and a
// reply's quote is plain; a long excerpt is cut, and what comes from the
// server is escaped.
func TestReplyQuotedInAPipe(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "bob", "alice"))
	st.printed()
	long := strings.Repeat("é", 99) + "…"
	st.feed(false, replyEv("bob", "general", "", "sure", "b1", &chatv1.ReplyTo{Id: "x", Sender: "carol", Excerpt: long}))
	st.feed(false, replyEv("bob", "general", "", "ok", "b2", &chatv1.ReplyTo{Id: "y", Sender: "evil\x1b[2J", Excerpt: "\x1b]0;owned\x07 hi"}))
	want := "15:04:05 #general bob (re carol: \"" + strings.Repeat("é", 39) + "…\"): sure\n" +
		`15:04:05 #general bob (re evil\x1b[2J: "\x1b]0;owned\x07 hi"): ok` + "\n"
	if got := st.printed(); got != want {
		t.Errorf("printed\n%q\nwant\n%q", got, want)
	}
}

// /reply sends text as an answer to the message a number, "last" or an id
// names, in that message's conversation; what it cannot name it says.
func TestReplyCommand(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "bob", "alice"))
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.feed(false, messageEv("bob", "general", "", "lunch?", "b1")) // [1]
	st.feed(false, messageEv("bob", "", "alice", "psst", "b2"))     // [2]
	st.feed(false, messageEv("alice", "go", "", "gophers?", "a1"))  // [3]
	st.printed()

	for _, tt := range []struct {
		line            string
		id, ch, to, say string
	}{
		{"/reply 1 yes", "b1m", "general", "", "yes"},
		{"/reply [2]   you too ", "b2m", "", "bob", "you too"},
		{"/reply last anyone?", "b1m", "general", "", "anyone?"}, // general is current
		{"/reply b2m again", "b2m", "", "bob", "again"},          // an id chatctl showed
		{"/reply 6db9c405-7 old", "6db9c405-7", "general", "", "old"},
	} {
		st.s.queue = nil
		st.s.command(tt.line)
		if len(st.s.queue) != 1 {
			t.Errorf("%s: queued %v; want one message (printed %q)", tt.line, st.s.queue, st.printed())
			continue
		}
		send := st.s.queue[0].GetSend()
		if send.GetReplyTo() != tt.id || send.GetChannel() != tt.ch || send.GetRecipient() != tt.to || send.GetText() != tt.say {
			t.Errorf("%s: sent %v; want %q to #%s@%s replying to %s", tt.line, send, tt.say, tt.ch, tt.to, tt.id)
		}
	}
	st.printed()

	st.s.command("/switch go")
	st.s.queue = nil
	st.s.command("/reply last me again")
	if send := st.s.queue[0].GetSend(); send.GetReplyTo() != "a1m" || send.GetChannel() != "go" {
		t.Errorf("/reply last in #go sent %v; want a reply to a1m in go", send)
	}
	st.feed(false, channelJoinedEv("empty", "alice", 0, "alice"))
	st.s.command("/switch empty")
	st.printed()
	st.s.queue = nil
	for _, tt := range []struct{ line, want string }{
		{"/reply", replyUsage},
		{"/reply 1", replyUsage},
		{"/reply last hi", "No message in #empty to reply to yet."},
		{"/reply 9 hi", "No message [9]: reply to a number shown before a message."},
		{"/reply 0 hi", "No message [0]"},
	} {
		st.s.command(tt.line)
		if got := st.printed(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s printed %q; want %q", tt.line, got, tt.want)
		}
	}
	if len(st.s.queue) != 0 {
		t.Errorf("refused replies queued %v; want nothing sent", st.s.queue)
	}
}

// Numbers are kept for the last maxShortIDs messages shown: an older one
// is refused as too far back, not sent to some other message.
func TestShortIDsAreBounded(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "bob", "alice"))
	for i := range maxShortIDs + 1 {
		st.feed(false, messageEv("bob", "general", "", "hi", fmt.Sprint(i)))
	}
	if n := len(st.s.ids.byNum); n != maxShortIDs || len(st.s.ids.byID) != maxShortIDs {
		t.Errorf("%d numbers held (%d ids); want %d", n, len(st.s.ids.byID), maxShortIDs)
	}
	st.printed()
	st.s.command("/reply 1 hi")
	if got := st.printed(); !strings.HasPrefix(got, "Message [1] is too far back") || len(st.s.queue) != 0 {
		t.Errorf("/reply 1 printed %q and queued %v; want it refused as too far back", got, st.s.queue)
	}
	st.s.command("/reply 2 hi")
	if len(st.s.queue) != 1 || st.s.queue[0].GetSend().GetReplyTo() != "1m" {
		t.Errorf("/reply 2 queued %v; want a reply to 1m", st.s.queue)
	}
}
