package server_test

import (
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
)

// Conversation features: replies and mentions.

func replyReq(text, channel, recipient, replyTo, clientID string) *chatv1.ChatRequest {
	req := sendReq(text, channel, recipient, clientID)
	req.GetSend().ReplyTo = replyTo
	return req
}

// A reply carries the id, sender and start of the message it answers, so
// that a client that does not have the original can show it.
func TestReplyCarriesTheOriginal(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)

	long := strings.Repeat("é", 150)
	var ids []string
	for _, text := range []string{"lunch?", long} {
		bob.say(t, text, "")
		ids = append(ids, bob.next(t).GetMessage().GetId())
		alice.next(t)
	}
	for i, want := range []*chatv1.ReplyTo{
		{Id: ids[0], Sender: "bob", Excerpt: "lunch?"},
		{Id: ids[1], Sender: "bob", Excerpt: strings.Repeat("é", 99) + "…"},
	} {
		alice.send(t, replyReq("yes", "", "", ids[i], "r"))
		for _, c := range []*client{alice, bob} {
			m := expectChannelMessage(t, c.name, c.next(t), "general", "alice", "yes")
			if got := m.GetReplyTo(); got.GetId() != want.GetId() || got.GetSender() != want.GetSender() || got.GetExcerpt() != want.GetExcerpt() {
				t.Errorf("%s: reply_to %v; want %v", c.name, got, want)
			}
		}
	}

	// Only within the conversation, and only to a message of this chat.
	bob.send(t, sendReq("psst", "", "alice", ""))
	private := bob.next(t).GetMessage().GetId()
	alice.next(t)
	alice.send(t, replyReq("in general?", "", "", private, "x1"))
	expectRejected(t, "alice", alice.next(t), "x1", codes.NotFound)
	alice.send(t, replyReq("?", "", "", "not-an-id", "x2"))
	expectRejected(t, "alice", alice.next(t), "x2", codes.InvalidArgument)
	// Privately, the private message can be answered.
	alice.send(t, replyReq("sure", "", "bob", private, "p1"))
	if m := alice.next(t).GetMessage(); m.GetReplyTo().GetExcerpt() != "psst" {
		t.Errorf("alice's private reply: %v; want it to quote psst", m)
	}
	bob.next(t)
}

// The server finds the users a message names with @name, in any case and
// by look-alike letters, and counts them beside unread counts.
func TestMentions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(nil))
	alice := join(t, ts, "alice")
	bob := join(t, ts, "Bob")
	expectJoined(t, "alice", alice.next(t), "Bob", false)
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"@ALICE, look at this", []string{"alice"}},
		{"@bob: and you, @alice!", []string{"Bob", "alice"}},
		{"@bоb with a Cyrillic о, @alice and @alice again", []string{"Bob", "alice"}},
		{"mail alice@example.com or @nobody, not @", nil},
	} {
		bob.say(t, tc.text, "")
		ev := bob.next(t)
		alice.next(t)
		if got := ev.GetMessage().GetMentions(); !slices.Equal(got, tc.want) {
			t.Errorf("%q mentions %v; want %v", tc.text, got, tc.want)
		}
	}
	// Three of bob's four messages mention alice: her read state counts
	// them, and marking the first read leaves two.
	phone := joinDevice(t, ts, alice)
	r := phone.general.joined.GetChannelJoined().GetRead()
	if r.GetUnread() != 4 || r.GetMentions() != 3 {
		t.Fatalf("alice's #general read state = %v; want 4 unread, 3 mentioning her", r)
	}
	first := phone.general.history[len(phone.general.history)-4].GetMessage().GetId()
	phone.send(t, markReadReq("general", "", first, ""))
	ev := phone.next(t)
	if ev.GetRead().GetUnread() != 3 || ev.GetRead().GetMentions() != 2 {
		t.Errorf("after marking the first read: %v; want 3 unread, 2 mentioning her", ev.GetRead())
	}
}

// Reading a message's @names costs little whatever the text: at most 20
// names of at most 4 forms each, each byte of the text looked at a bounded
// number of times (BenchmarkMentionWords measures the worst texts).
func TestMentionWordsBounded(t *testing.T) {
	t.Parallel()
	for _, text := range hostileMentionTexts() {
		forms := server.MentionWords(text)
		if len(forms) > 20 {
			t.Errorf("%.20q…: %d words read; want at most 20", text, len(forms))
		}
		for _, n := range forms {
			if n > 4 {
				t.Errorf("%.20q…: a word read in %d forms; want at most 4", text, n)
			}
		}
	}
}

func hostileMentionTexts() []string {
	return []string{
		strings.Repeat("@", 4096),
		strings.Repeat("@a!!!!!!!!", 409),
		strings.Repeat("@"+strings.Repeat("x", 200)+" ", 20),
		strings.Repeat("@é,", 1365),
	}
}

func BenchmarkMentionWords(b *testing.B) {
	for _, text := range hostileMentionTexts() {
		b.Run(text[:3], func(b *testing.B) {
			for b.Loop() {
				server.MentionWords(text)
			}
		})
	}
}
