package server_test

import (
	"fmt"
	"testing"

	"github.com/chatd/chatd/server"
)

// The private read marks a user keeps are bounded: a thousand and one
// users writing to alice leave her marks for the last thousand, the one
// read longest ago dropped.
func TestHubPrivateMarksBounded(t *testing.T) {
	t.Parallel()
	h := newHubWith(t, func(c *server.Config) { c.MaxSessions, c.QueueSize = 2000, 100000 })
	alice := mustJoin(t, h, "alice")
	welcome := queued(alice)[0]
	const writers = 1001
	for i := range writers {
		s := mustJoin(t, h, fmt.Sprintf("w%04d", i))
		if err := h.Send(t.Context(), s, "hi", "", "alice", ""); err != nil {
			t.Fatal(err)
		}
		queued(s)
	}
	phone := mustJoinDeviceWelcome(t, h, alice, welcome)
	up := phone.GetWelcome().GetUnreadPrivate()
	if len(up) != writers-1 {
		t.Fatalf("alice's new device is told of %d unread private conversations; want the last %d", len(up), writers-1)
	}
	if up[0].GetWith() != "w0001" {
		t.Errorf("the first unread conversation listed is with %s; want w0001 (w0000's dropped, read longest ago)", up[0].GetWith())
	}
}
