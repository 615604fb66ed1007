package server_test

// Tests of private messages on a hub driven directly, with no transport
// (private_test.go has the same over real TCP).

import (
	"errors"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHubPrivateMessages(t *testing.T) {
	t.Parallel()
	h := newHub(t, 10, 64)
	a := hubJoin(t, h, "alice")
	b := hubJoin(t, h, "Bob")
	c := hubJoin(t, h, "carol")
	queued(a)
	queued(b)

	if err := h.Send(t.Context(), a, "psst", "", "BOB", "d1"); err != nil {
		t.Fatalf("Send to BOB = %v", err)
	}
	mine, theirs := take(t, a), take(t, b)
	m := theirs.GetMessage()
	if !sameEvent(mine, theirs) || m.GetRecipient() != "Bob" || m.GetChannel() != "" || m.GetSender() != "alice" || m.GetClientId() != "d1" {
		t.Errorf("alice got %v, Bob got %v; want the same private message to Bob (as he wrote his name), no channel", mine, theirs)
	}
	expectNothingQueued(t, c)

	// To yourself: one copy.
	if err := h.Send(t.Context(), a, "note to self", "", "alice", ""); err != nil {
		t.Fatal(err)
	}
	take(t, a)

	for _, who := range []string{"nobody", "not a name"} {
		err := h.Send(t.Context(), a, "hello?", "", who, "")
		if !errors.Is(err, server.ErrNotFound) || status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "not online") {
			t.Errorf("Send to %q = %v; want ErrNotFound (NOT_FOUND) saying they are not online", who, err)
		}
	}
	// A disconnected user, parked for a resume, is not online either.
	h.Leave(c, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	if err := h.Send(t.Context(), a, "where are you?", "", "carol", ""); !errors.Is(err, server.ErrNotFound) {
		t.Errorf("Send to a disconnected user = %v; want ErrNotFound", err)
	}
	queued(a)
	queued(b)
	expectNothingQueued(t, a)
}
