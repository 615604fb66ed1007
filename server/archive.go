package server

import (
	"context"
	"time"
)

// Archive keeps every message of the chat for scroll-back (see
// service.History), beyond what channels keep in memory: internal/archive,
// in a chatd's data directory.
type Archive interface {
	// Add queues a message of conversation conv (see channelConv,
	// privateConv) to be kept: number is its place among all the chat's
	// messages (they come in order; one the archive has is skipped),
	// wire its event's encoding. It is called under hub.mu and must not
	// block.
	Add(conv string, number uint64, t time.Time, wire []byte)
	// Page returns up to limit messages of conv before message number
	// before (0: the newest), oldest first, and whether older ones remain.
	Page(conv string, before uint64, limit int) ([][]byte, bool, error)
	// Flush writes and syncs what was added. The node calls it before it
	// saves a snapshot: the log it then lets go holds nothing the archive
	// lacks.
	Flush(ctx context.Context) error
	// Prune removes what is past the archive's limits (age, size).
	Prune()
}

// WithArchive has a node keep every message in a, for scroll-back. Only a
// node whose log is its own should: every node of a cluster would keep one
// of its own, from when it started.
func WithArchive(a Archive) Option {
	return func(o *options) { o.archive = a }
}

// channelConv is the archive's name of a channel's conversation.
func channelConv(key string) string { return "#" + key }

// privateConv is the archive's name of the private conversation between
// the users of keys a and b, whichever sends.
func privateConv(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return "@" + a + "\x00" + b
}

// archiveLocked keeps ev, the message numbered h.msgs, in conversation
// conv's archive, if the node has one. hub.mu must be held.
func (h *hub) archiveLocked(conv string, ev *event) {
	if h.archive != nil && ev.wire != nil {
		h.archive.Add(conv, h.msgs, h.now, ev.wire)
	}
}
