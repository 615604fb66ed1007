package server_test

// Helpers of the tests that drive a Hub directly, with no transport
// (*_hub_test.go; the stream tests' helpers are helpers_test.go's).

// The hub queues events synchronously, under its lock, so these tests read
// queues without waiting: whatever an operation queues is there when it
// returns.

import (
	"net/netip"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
)

// newHub returns a hub with the default configuration but for its session
// and queue limits.
func newHub(t testing.TB, maxSessions, queueSize int) *server.Hub {
	return newHubWith(t, func(c *server.Config) { c.MaxSessions, c.QueueSize = maxSessions, queueSize })
}

// newHubWith returns a running hub with the default configuration changed
// by edit; the test's cleanup stops it.
func newHubWith(t testing.TB, edit func(*server.Config)) *server.Hub {
	t.Helper()
	cfg := server.DefaultConfig()
	edit(&cfg)
	h := server.NewHub(cfg)
	t.Cleanup(h.Shutdown)
	return h
}

// mustJoin joins name and leaves its events queued.
func mustJoin(t *testing.T, h *server.Hub, name string) *server.Stream {
	t.Helper()
	s, err := h.Join(t.Context(), name, "", 0, netip.Addr{})
	if err != nil {
		t.Fatalf("Join(%q) = %v; want success", name, err)
	}
	return s
}

// hubJoin joins name and takes what a join queues for it: the welcome,
// then general's channel_joined and history. It returns the welcome.
func hubJoin(t *testing.T, h *server.Hub, name string) *server.Stream {
	t.Helper()
	s := mustJoin(t, h, name)
	evs := queued(s)
	if len(evs) < 2 || evs[0].GetWelcome() == nil || evs[1].GetChannelJoined().GetChannel() != "general" ||
		len(evs) != 2+int(evs[1].GetChannelJoined().GetHistoryCount()) {
		t.Fatalf("%s's first events = %v; want a welcome, general's channel_joined and its history", name, evs)
	}
	return s
}

// queued takes every event waiting on s's queue.
func queued(s *server.Stream) []*chatv1.ChatResponse {
	var evs []*chatv1.ChatResponse
	for _, d := range s.Take(nil) {
		evs = append(evs, d.Response())
	}
	return evs
}

// take takes the one event waiting on s's queue.
func take(t *testing.T, s *server.Stream) *chatv1.ChatResponse {
	t.Helper()
	evs := queued(s)
	if len(evs) != 1 {
		t.Fatalf("%s has %d events queued: %v; want exactly 1", s.User().GetUsername(), len(evs), evs)
	}
	return evs[0]
}

func expectNothingQueued(t *testing.T, s *server.Stream) {
	t.Helper()
	if evs := queued(s); len(evs) > 0 {
		t.Fatalf("%s has %d events queued: %v; want none", s.User().GetUsername(), len(evs), evs)
	}
}

func isEnded(s *server.Stream) bool {
	select {
	case <-s.Ended():
		return true
	default:
		return false
	}
}

// sameEvent reports whether two sessions' copies are the same event: equal
// but for the seq, which each session numbers its own way.
func sameEvent(a, b *chatv1.ChatResponse) bool {
	a, b = proto.CloneOf(a), proto.CloneOf(b)
	a.Seq, b.Seq = 0, 0
	return proto.Equal(a, b)
}

func mustJoinChannel(t *testing.T, h *server.Hub, s *server.Stream, name string) {
	t.Helper()
	if err := h.JoinChannel(t.Context(), s, name); err != nil {
		t.Fatalf("%s: JoinChannel(%q) = %v", s.User().GetUsername(), name, err)
	}
}
