package e2e_test

import (
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/authtest"
)

// A signed-in user's read marks, and a private message sent to them while
// they were offline, survive chatd's restart on its data directory: the
// real chatd binary, killed gently and started again.
func TestRestartKeepsReadStateAndInbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := authtest.WriteFile(t, "jwt.key", []byte(authtest.Secret+"\n"))
	flags := []string{"--message-rate", "0", "--auth-jwt-key", secret, "--auth-issuer", "test-idp"}
	c := startDurable(t, dir, flags...)
	alice := &member{name: "alice", auth: token(t, "alice", time.Hour)}
	alice.connect(t, c.addr)
	bob := &member{name: "bob", auth: token(t, "bob", time.Hour)}
	bob.connect(t, c.addr)
	var ids []string
	for _, text := range []string{"one", "two", "three"} {
		bob.sayIn(t, "general", text)
		alice.until(t, func(ev *chatv1.ChatResponse) bool {
			if ev.GetMessage().GetText() == text {
				ids = append(ids, ev.GetMessage().GetId())
				return true
			}
			return false
		})
	}
	if err := alice.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_MarkRead{MarkRead: &chatv1.MarkRead{Channel: "general", MessageId: ids[0]}}}); err != nil {
		t.Fatal(err)
	}
	alice.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetRead().GetLastReadId() == ids[0] })

	// Alice's connection drops; bob writes to her meanwhile.
	alice.cancel()
	bob.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetUserLeft().GetUser().GetUsername() == "alice" })
	if err := bob.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Recipient: "alice", Text: "while you were out"}}}); err != nil {
		t.Fatal(err)
	}
	bob.until(t, func(ev *chatv1.ChatResponse) bool {
		if r := ev.GetRejected(); r != nil {
			t.Fatalf("bob's message to alice, offline, refused: %s", r.GetReason())
		}
		return ev.GetMessage().GetText() == "while you were out"
	})
	c.terminate(t)

	c = startDurable(t, dir, flags...)
	alice.lastSeq = 0 // a client that kept nothing: everything afresh
	w := alice.connect(t, c.addr)
	if up := w.GetWelcome().GetUnreadPrivate(); len(up) != 1 || up[0].GetWith() != "bob" || up[0].GetUnread() != 1 {
		t.Errorf("alice's welcome after the restart lists unread private conversations %v; want 1 from bob", up)
	}
	general := alice.next(t).GetChannelJoined()
	if r := general.GetRead(); r.GetLastReadId() != ids[0] || r.GetUnread() != 2 {
		t.Errorf("alice's #general after the restart: read state %v; want read up to %s, 2 unread", r, ids[0])
	}
	for range general.GetHistoryCount() {
		alice.next(t)
	}
	if m := alice.next(t).GetMessage(); m.GetText() != "while you were out" || m.GetSender() != "bob" || m.GetRecipient() != "alice" {
		t.Errorf("alice's next event after her catch-up = %v; want bob's message kept for her", m)
	}
}
