package server

import (
	"context"
	"log/slog"
	"math"
	"unsafe"

	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/proto"
)

// NewHub returns a hub of a node of its own, run with cfg's limits and no
// limit per client address, for tests that drive the hub directly, with no
// transport: synchronously, a join or a message at a time.
func NewHub(cfg Config) *Hub { return newSoloHub(cfg, nil) }

// Machine is the chat's state machine as a follower node runs it: a hub
// that applies a log's entries through Cluster.apply, with no stream of
// its own, for tests of what apply.go promises (same entries, same state).
type Machine struct{ c *Cluster }

// NewMachine returns a machine with cfg's limits and the default node
// settings, at the start of a log. It never becomes ready, so that it
// arms no timers of its own.
func NewMachine(cfg Config) *Machine {
	_, c := newClusterHub(cfg, DefaultClusterConfig(), nil, nil, slog.New(slog.DiscardHandler))
	c.target = math.MaxUint64
	return &Machine{c: c}
}

// Apply applies the log's next entry.
func (m *Machine) Apply(e Entry) error { return m.c.apply(e) }

// Snapshot returns the machine's state, encoded deterministically.
func (m *Machine) Snapshot() []byte {
	h := m.c.h
	h.mu.Lock()
	state := h.snapshotLocked(m.c.applied)
	h.mu.Unlock()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(state.proto())
	if err != nil {
		panic(err)
	}
	return b
}

// RestoreMachine returns a machine with cfg's limits that starts from the
// state snap, made by Snapshot.
func RestoreMachine(cfg Config, snap []byte) (*Machine, error) {
	m := NewMachine(cfg)
	s := &clusterv1.Snapshot{}
	if err := proto.Unmarshal(snap, s); err != nil {
		return nil, err
	}
	h := m.c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.restoreLocked(s); err != nil {
		return nil, err
	}
	m.c.applied = s.GetSeq()
	return m, nil
}

// Typing returns the names of who is typing in channel, as the machine
// keeps them.
func (m *Machine) Typing(channel string) []string {
	h := m.c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	if tc := h.typing[channelConv(channel)]; tc != nil {
		for _, t := range tc.typers {
			names = append(names, t.per.user.Username)
		}
	}
	return names
}

// Devices returns how many sessions user (by its key) has.
func (m *Machine) Devices(key string) int {
	h := m.c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if per := h.byKey[key]; per != nil {
		return len(per.devices)
	}
	return 0
}

// Attached returns the node and attachment of the stream user (by its
// key) has, if it is online, for commands that name it.
func (m *Machine) Attached(key string) (node string, attach uint64, ok bool) {
	h := m.c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	per := h.byKey[key]
	if per == nil {
		return "", 0, false
	}
	for _, sess := range per.devices {
		if sess.state == stateOnline {
			return sess.node, sess.attach, true
		}
	}
	return "", 0, false
}

// ListChannels queues the channel list for s alone, as the answer to its
// request clientID, as a list_channels request on its stream does.
func (h *Hub) ListChannels(s *Stream, clientID string) { h.listChannels(s, clientID) }

// RecentBytes estimates what the chat's index of recent messages (for
// replies) takes in memory: it is the chat's, not any channel's, and
// bounded by recentMessages.
func (h *Hub) RecentBytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, m := range h.recent {
		// The struct and its excerpt, each rounded up to an allocation
		// size class; its place in h.recent, grown by doubling; its entry
		// in recentByNum, with the map's own overhead. conv and sender
		// are shared with the channel and the user.
		n += roundAlloc(int64(unsafe.Sizeof(*m))) + roundAlloc(int64(len(m.excerpt))) + 16 + 48
	}
	return n
}

// MentionWords reads the @names of text as a message's command carries
// them: how many words, and how many forms of each.
func MentionWords(text string) (forms []int) {
	for _, w := range mentionWords(text) {
		forms = append(forms, len(w.GetForms()))
	}
	return forms
}

// JoinDevice joins name as another device of the user, proven by
// deviceKey (a welcome's device_key), as a join's device_key does.
func (h *Hub) JoinDevice(ctx context.Context, name, deviceKey string) (*Stream, error) {
	return h.join(ctx, joinRequest{username: name, deviceKey: deviceKey})
}

// Send sends a message from s: to a channel's members, or privately to one
// user online, and in both cases to the sender, whose copy is its
// acknowledgement. With neither channel nor recipient it goes to general.
// It refuses invalid text (ErrInvalidText), a bad target
// (ErrInvalidChannel, ErrInvalidRequest), an unknown channel or a user not
// online (ErrNotFound), a channel s is not in (ErrNotInChannel) and a
// session that is no longer online (ErrNotJoined). It waits for the
// message to be applied, or until ctx ends: a stream's messages do not
// (see sendPipelined), so only tests need it.
func (h *Hub) Send(ctx context.Context, s *Stream, text, channelName, recipient, clientID string) error {
	cmd, err := h.sendCommand(s, text, channelName, recipient, "", clientID)
	if err != nil {
		return err
	}
	return h.submit(ctx, cmd, streamPending(s)).err
}

// The hub's types, for the package's tests, which drive a hub with no
// transport: outside the package they are not to be had.
type (
	Hub      = hub
	Stream   = stream
	Event    = event
	Delivery = delivery
	Service  = service
)

// Service returns the chat service, for tests that call its handlers
// without a connection.
func (s *Server) Service() *Service { return s.svc }

// roundAlloc rounds n up as the allocator's small size classes do, near
// enough: to 16 bytes up to 128, to 32 up to 256, to 64 past that.
func roundAlloc(n int64) int64 {
	switch {
	case n <= 128:
		return (n + 15) &^ 15
	case n <= 256:
		return (n + 31) &^ 31
	}
	return (n + 63) &^ 63
}
