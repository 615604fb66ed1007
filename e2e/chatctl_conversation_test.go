//go:build linux

package e2e_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// Replies, mentions and typing (issue 19) with the real chatctl: its
// other side is a program on chatclient, which sees exactly what chatd
// sends.

// connectAs joins the chat as name with chatclient, and returns the
// client with its events.
func connectAs(t *testing.T, srv *chatd, name string) (*chatclient.Client, <-chan *chatv1.ChatResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	c, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{srv.addr}}, name)
	if err != nil {
		t.Fatal(err)
	}
	return c, events(t, c)
}

// say sends req on c, or fails the test.
func say(t *testing.T, c *chatclient.Client, req *chatv1.ChatRequest) {
	t.Helper()
	if err := c.Send(req); err != nil {
		t.Fatal(err)
	}
}

// sendReq sends text to general, as typingReq types there: named alike,
// for chatd to take a typing at once after a message (it compares the
// names as sent).
func sendReq(text, replyTo, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text, Channel: "general", ReplyTo: replyTo}}}
}

func typingReq(stopped bool) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Typing{Typing: &chatv1.Typing{Channel: "general", Stopped: stopped}}}
}

// messageFrom waits for a message of sender with text, and returns it.
func messageFrom(t *testing.T, seen <-chan *chatv1.ChatResponse, sender, text string) *chatv1.Message {
	t.Helper()
	return nextEvent(t, seen, sender+"'s "+text, func(ev *chatv1.ChatResponse) bool {
		return ev.GetMessage().GetSender() == sender && ev.GetMessage().GetText() == text
	}).GetMessage()
}

// expectReplyTo checks that m answers the message id of sender that
// says excerpt.
func expectReplyTo(t *testing.T, m *chatv1.Message, id, sender, excerpt string) {
	t.Helper()
	if r := m.GetReplyTo(); r.GetId() != id || r.GetSender() != sender || r.GetExcerpt() != excerpt {
		t.Errorf("%s's %q answers %v; want %s's %s (%q)", m.GetSender(), m.GetText(), r, sender, id, excerpt)
	}
}

// In a pipe, /reply last and /reply with a message's id answer a message
// in its conversation; replies both ways are quoted; a message naming
// alice is a line like any other; and nothing is said of typing.
func TestChatctlRepliesInAPipe(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	bob, seen := connectAs(t, srv, "bob")
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, clock+`\* you joined #general \(2 members\), your current channel$`)

	say(t, bob, sendReq("lunch, @alice?", "", "b1"))
	lunch := messageFrom(t, seen, "bob", "lunch, @alice?").GetId()
	alice.expect(t, clock+`#general bob: lunch, @alice\?$`)

	alice.send(t, "/reply last yes, 12:30")
	yes := nextEvent(t, seen, "alice's reply", func(ev *chatv1.ChatResponse) bool {
		if ev.GetTyping() != nil {
			t.Errorf("bob was told %v; want no typing from a pipe", ev)
		}
		return ev.GetMessage().GetSender() == "alice"
	}).GetMessage()
	if yes.GetText() != "yes, 12:30" || yes.GetChannel() != "general" {
		t.Errorf("alice's reply is %v; want yes, 12:30 in general", yes)
	}
	expectReplyTo(t, yes, lunch, "bob", "lunch, @alice?")
	alice.expect(t, clock+`#general alice \(re bob: "lunch, @alice\?"\): yes, 12:30$`)

	say(t, bob, sendReq("great", yes.GetId(), "b2"))
	alice.expect(t, clock+`#general bob \(re alice: "yes, 12:30"\): great$`)

	// By id, as -o json shows it; a number that is no message is refused.
	alice.send(t, "/reply "+lunch+" by id", "/reply 99 nope")
	expectReplyTo(t, messageFrom(t, seen, "alice", "by id"), lunch, "bob", "lunch, @alice?")
	alice.expect(t, `^No message \[99\]: reply to a number shown before a message\.$`)
	endInput(t, alice)
	if out := alice.stdout.String(); strings.ContainsAny(out, "\x1b\a") {
		t.Errorf("a pipe got escapes or the bell:\n%q", out)
	}
}

// rowMatch waits for a row of the terminal that matches pattern, and
// returns its submatches.
func (term *terminal) rowMatch(t *testing.T, pattern string) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var m []string
	term.waitFor(t, "a row matching "+pattern, func(rows []string, _, _ int) bool {
		for _, r := range rows {
			if m = re.FindStringSubmatch(r); m != nil {
				return true
			}
		}
		return false
	})
	return m
}

// On a terminal: a message naming alice stands out, with the bell; alice
// answers it by its number, and bob sees her typing, then her reply;
// clearing the line says she stopped. bob's typing shows on her prompt
// until his message comes, or he stops.
func TestChatctlInATerminalRepliesMentionsAndTyping(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	bob, seen := connectAs(t, srv, "bob")
	alice := startTerminal(t, "join", "--name", "alice", "--server", srv.addr)
	alice.waitPrompt(t, "#general> ", "")

	say(t, bob, sendReq("lunch, @alice?", "", "b1"))
	lunch := messageFrom(t, seen, "bob", "lunch, @alice?").GetId()
	n := alice.rowMatch(t, clock+`\[(\d+)\] #general bob: lunch, @alice\?$`)[1]
	if out := alice.screen.output(); !strings.Contains(out, "\x1b[1mlunch, @alice?\x1b[22m\a") {
		t.Errorf("the message naming alice is not in bold with the bell:\n%q", out)
	}

	typingOf := func(what string, users ...string) {
		t.Helper()
		ev := nextEvent(t, seen, what, func(ev *chatv1.ChatResponse) bool { return ev.GetTyping() != nil })
		if ts := ev.GetTyping(); ts.GetChannel() != "general" || !slices.Equal(ts.GetUsers(), users) || ts.GetSeveral() {
			t.Errorf("%s: bob was told %v; want %v typing in general", what, ts, users)
		}
	}
	alice.typeKeys(t, "/reply "+n+" su")
	alice.waitPrompt(t, "#general> ", "/reply "+n+" su")
	typingOf("alice typing her reply", "alice")
	alice.typeKeys(t, "re\r")
	sure := nextEvent(t, seen, "alice's reply", func(ev *chatv1.ChatResponse) bool {
		if ev.GetTyping() != nil {
			t.Errorf("bob was told %v before alice's reply; want only her message (it ends her typing)", ev)
		}
		return ev.GetMessage().GetSender() == "alice"
	}).GetMessage()
	if sure.GetText() != "sure" {
		t.Errorf("alice sent %v; want her reply", sure)
	}
	expectReplyTo(t, sure, lunch, "bob", "lunch, @alice?")
	alice.waitRow(t, clock+shortID+`#general alice \(re \[`+n+`\] bob: "lunch, @alice\?"\): sure$`)

	alice.typeKeys(t, "never mind")
	typingOf("alice typing again", "alice")
	alice.typeKeys(t, "\x15") // Ctrl-U clears the line
	typingOf("alice clearing her line")
	alice.waitPrompt(t, "#general> ", "")

	say(t, bob, typingReq(false))
	alice.waitPrompt(t, "(bob is typing…) #general> ", "")
	alice.typeKeys(t, "wait")
	alice.waitPrompt(t, "(bob is typing…) #general> ", "wait")
	say(t, bob, sendReq("done", "", "b2"))
	alice.waitRow(t, clock+shortID+`#general bob: done$`)
	alice.waitPrompt(t, "#general> ", "wait")
	say(t, bob, typingReq(false))
	alice.waitPrompt(t, "(bob is typing…) #general> ", "wait")
	say(t, bob, typingReq(true))
	alice.waitPrompt(t, "#general> ", "wait")

	alice.typeKeys(t, "\x15\x04")
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d after Ctrl-D, want 0\n%s", code, alice.screen)
	}
}
