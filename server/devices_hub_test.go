package server_test

import (
	"errors"
	"slices"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
)

// mustJoinDevice joins as another device of the user s is, by the device
// key of s's welcome, and takes what the join queued for it.
func mustJoinDevice(t *testing.T, h *server.Hub, s *server.Stream, welcome *chatv1.ChatResponse) *server.Stream {
	t.Helper()
	d, err := h.JoinDevice(t.Context(), s.User().GetUsername(), welcome.GetWelcome().GetDeviceKey())
	if err != nil {
		t.Fatalf("JoinDevice(%s) = %v; want success", s.User().GetUsername(), err)
	}
	queued(d)
	return d
}

// mustJoinDeviceWelcome is mustJoinDevice, returning the new device's
// welcome.
func mustJoinDeviceWelcome(t *testing.T, h *server.Hub, s *server.Stream, welcome *chatv1.ChatResponse) *chatv1.ChatResponse {
	t.Helper()
	d, err := h.JoinDevice(t.Context(), s.User().GetUsername(), welcome.GetWelcome().GetDeviceKey())
	if err != nil {
		t.Fatalf("JoinDevice(%s) = %v; want success", s.User().GetUsername(), err)
	}
	return queued(d)[0]
}

// A device that stops reading is dropped alone: its user stays online on
// the others, which go on with no gap, and nobody is told anything.
func TestHubSlowDeviceDroppedAlone(t *testing.T) {
	t.Parallel()
	const queueSize = 2
	h := newHub(t, 10, queueSize)
	laptop := mustJoin(t, h, "alice")
	evs := queued(laptop)
	phone := mustJoinDevice(t, h, laptop, evs[0]) // the phone reads nothing from here on
	bob := hubJoin(t, h, "bob")
	take(t, laptop) // bob joined
	for i, text := range []string{"one", "two", "three"} {
		if err := h.Send(t.Context(), bob, text, "", "", ""); err != nil {
			t.Fatal(err)
		}
		if ev := take(t, laptop); ev.GetMessage().GetText() != text {
			t.Fatalf("laptop, message %d: got %v", i, ev)
		}
		take(t, bob)
	}
	if !isEnded(phone) || !errors.Is(phone.EndErr(), server.ErrTooSlow) {
		t.Fatalf("the phone, which read nothing: ended %v, %v; want dropped as too slow", isEnded(phone), phone.EndErr())
	}
	// The drop parked the phone; alice is still online on the laptop.
	if n := names(h.Users()); !slices.Equal(n, []string{"alice", "bob"}) {
		t.Errorf("Users() = %v; want alice still online", n)
	}
	if err := h.Send(t.Context(), laptop, "still here", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ev := take(t, bob); ev.GetMessage().GetText() != "still here" {
		t.Errorf("bob: got %v; want alice's message and no user_left before it", ev)
	}
	if ev := take(t, laptop); ev.GetMessage().GetText() != "still here" || ev.GetSeq() != 7 {
		// welcome 1, general 2, bob joined 3, three messages, this one.
		t.Errorf("laptop: got %v; want its own message with seq 7, no gap", ev)
	}
}
