package e2e_test

import (
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chromedp/chromedp"
)

// What the page counts as unread, and what it marks read: the server's
// counts, and what the person has seen.

// request sends req on the member's stream.
func (m *member) request(t *testing.T, req *chatv1.ChatRequest) {
	t.Helper()
	if err := m.stream.Send(req); err != nil {
		t.Fatalf("%s: send %v: %v", m.name, req, err)
	}
}

// sendTo sends text to a channel ("#ops") or privately to a user ("@alice").
func (m *member) sendTo(t *testing.T, to, text string) {
	t.Helper()
	s := &chatv1.SendMessage{Text: text}
	if to[0] == '@' {
		s.Recipient = to[1:]
	} else {
		s.Channel = to[1:]
	}
	m.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: s}})
}

// The counts are the server's: a reload shows them as they were, and the
// private conversations with unread messages too (their messages come from
// History when opened).
func TestBrowserUnreadCountsAreTheServers(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	loginAll(t, alice)
	alice.joinChannel(t, "ops")
	alice.openConv(t, "#general")
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)
	bob.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: "ops"}}})
	bob.sendTo(t, "#ops", "one")
	bob.sendTo(t, "#ops", "two")
	bob.sendTo(t, "@alice", "psst")
	alice.waitUnread(t, "#ops", 2)
	alice.waitUnread(t, "@bob", 1)

	alice.run(t, chromedp.Reload())
	alice.waitVisible(t, "chat-view", true)
	alice.waitConvs(t, "#general", "#ops", "@bob")
	alice.waitUnread(t, "#ops", 2)
	alice.waitUnread(t, "@bob", 1)
	alice.openConv(t, "@bob")
	alice.waitLine(t, "#messages li.message", "bobpsst")
	alice.waitUnread(t, "@bob", 0)

	// Read is read for the server too: after another reload only #ops has
	// unread messages, and the conversation with bob, read, is not listed.
	alice.run(t, chromedp.Reload())
	alice.waitVisible(t, "chat-view", true)
	alice.waitConvs(t, "#general", "#ops")
	alice.waitUnread(t, "#ops", 2)
}

// A message in the conversation shown is read only if the person can see
// it: behind another tab it counts as unread until the tab is in front.
func TestBrowserUnreadWhileNotLooking(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	loginAll(t, alice)
	alice.joinChannel(t, "ops")
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)
	bob.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: "ops"}}})
	alice.openConv(t, "#ops")
	bob.sendTo(t, "#ops", "seen")
	alice.waitLine(t, "#messages li.message", "bobseen")
	alice.waitUnread(t, "#ops", 0)

	openTab(t, browser, "another tab", srv.url) // in front of alice's
	bob.sendTo(t, "#ops", "while away")
	alice.waitLine(t, "#messages li.message", "bobwhile away")
	alice.waitUnread(t, "#ops", 1)
	alice.front(t)
	alice.waitUnread(t, "#ops", 0)
}
