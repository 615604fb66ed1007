package server

import (
	"net/netip"
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
)

// memberState is where a user's session stands.
type memberState uint8

const (
	// stateOffline: taken off the online list, and about to be parked or
	// forgotten (never so once the hub's lock is released).
	stateOffline memberState = iota
	// stateOnline: a stream is attached, on some node (on this one if att
	// is set). The user is on the online list.
	stateOnline
	// stateHeld: the node its stream was on stopped on purpose. The user
	// stays on the online list, unannounced, until its deadline, while its
	// client reconnects to another node; then it is announced as gone.
	stateHeld
	// stateParked: its stream ended without a logout and everyone was
	// told. Its name and events are kept for a resume until its deadline.
	stateParked
)

// member is a user's session as the hub keeps it. It outlives the stream
// that created it: after a disconnect it is parked for the resume grace
// period, still receiving (into its log) the events of its channels, and a
// join with its token attaches a new stream to it. In a cluster every node
// keeps every member, so that any node can resume any session; only the
// node its stream is on has the stream (att).
//
// Every field is owned by the hub: read and written only with Hub.mu held.
type member struct {
	key       string       // case-mapped username; unique among members
	skels     [2]string    // lookalikeKeys of the name; no two members share one
	tokenHash string       // SHA-256 of the resume token; unique among members
	user      *chatv1.User // replaced, not modified, when the user comes back

	state  memberState
	node   string   // the node its stream is on, while online
	attach uint64   // numbers its stream among all attachments, while online
	att    *Session // its stream, while online on this node; nil otherwise

	client netip.Addr // the client address its session counts against on this node; zero for none

	prev, next *member // neighbours on the online list, while online or held

	// seq numbers the member's events. log keeps the last numbered events
	// for a resume, up to and including seq: their seqs follow from
	// there, so it needs no room for them. A nil entry stands for a
	// channel snapshot, which is not kept (see channelSnapshotLocked).
	seq uint64
	log eventLog

	channels []*channel // the channels it is in, in the order it entered them

	gen      uint64    // counts holds and parkings, so that a stale deadline does nothing
	deadline time.Time // ends a hold or a parking
}

// resetLog empties the log: a resume can give nothing before this point.
func (m *member) resetLog() { m.log.reset() }

// logFloor is the seq of the newest event a resume can no longer be given:
// every event after it is in the log.
func (m *member) logFloor() uint64 { return m.seq - uint64(m.log.len()) }

// missed returns the logged events after lastSeq, numbered, or false if
// the log cannot give every one of them.
func (m *member) missed(lastSeq uint64) ([]Delivery, bool) {
	if lastSeq < m.logFloor() || lastSeq > m.seq {
		return nil, false
	}
	evs := m.log.last(int(m.seq - lastSeq))
	ds := make([]Delivery, len(evs))
	for i, ev := range evs {
		if ev == nil {
			return nil, false
		}
		ds[i] = Delivery{Seq: lastSeq + 1 + uint64(i), Event: ev}
	}
	return ds, true
}

// online reports whether others see the user online: a stream is attached,
// or its node stopped and it is held for a reconnection.
func (m *member) online() bool { return m.state == stateOnline || m.state == stateHeld }

// in reports whether the member is in ch.
func (m *member) in(ch *channel) bool {
	for _, c := range m.channels {
		if c == ch {
			return true
		}
	}
	return false
}

// Session is one stream's hold on a user's session: the queue of
// deliveries its writer sends, and how the hub ended it, if it did.
type Session struct {
	m        *member
	attach   uint64          // the member's attachment this stream is; never modified
	user     *chatv1.User    // the user as of this stream's join; never modified
	recovery chatv1.Recovery // what came of the join's resume token; never modified
	resumed  bool            // the join took back an existing session; never modified
	queue    *queue
	inflight chan struct{} // the session's messages on their way through the log (see sendPipelined)
	// cut is set, under Hub.mu, when the log shows that this node was
	// given up for dead with the stream attached: the stream is detached
	// then, but still answered until it ends (see Cluster.cutOffLocked).
	cut atomic.Bool

	// ended is closed when the hub ends the stream itself (too slow, server
	// shutdown, taken over by a resume). endErr and endReason are written
	// before the close and never after, so they may be read once ended is
	// closed.
	ended     chan struct{}
	endErr    error
	endReason chatv1.LeaveReason

	// Owned by the hub: read and written only with Hub.mu held.
	overflowed bool // queue overflowed; gets no more events
	endClosed  bool // ended has been closed
	forgive    bool // snapshots queued now do not count against the queue's limit
}

func newSession(m *member, queueSize, queueBytes int) *Session {
	return &Session{
		inflight: make(chan struct{}, pipelineWindow),
		m:        m,
		attach:   m.attach,
		user:     m.user,
		queue:    newQueue(queueSize, queueBytes),
		ended:    make(chan struct{}),
		// A new stream's welcome and snapshots, or a resume's replay,
		// never count.
		forgive: true,
	}
}

// answered reports whether s's requests are answered: it is attached, or
// it was given up with this node and is about to end (see
// Cluster.cutOffLocked). Hub.mu must be held.
func (s *Session) answered() bool { return s.m.att == s || s.cut.Load() }

// ref names s in a command.
func (s *Session) ref() *clusterv1.Stream {
	return &clusterv1.Stream{UserKey: s.m.key, Attach: s.attach}
}

// User returns the user this stream joined as.
func (s *Session) User() *chatv1.User { return s.user }

// Ended is closed when the hub has ended the stream; see [Session.EndErr].
func (s *Session) Ended() <-chan struct{} { return s.ended }

// EndErr says why the hub ended the stream, once Ended is closed.
func (s *Session) EndErr() error { return s.endErr }

// isEnded reports whether the hub has ended the stream.
func (s *Session) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// endLocked ends the stream from the hub's side. Hub.mu must be held.
func (s *Session) endLocked(err *Error, reason chatv1.LeaveReason) {
	if s.endClosed {
		return
	}
	s.endClosed = true
	s.endErr, s.endReason = err, reason
	close(s.ended)
	s.queue.signal() // the writer waits on the queue's token only
}

// Take returns every delivery waiting for the stream, in order, and
// empties its queue. spare, if not nil, is the emptied result of an earlier
// Take for the queue to reuse, so that a steady flow of events allocates
// nothing. Only the stream's writer may call it.
func (s *Session) Take(spare []Delivery) []Delivery { return s.queue.take(spare) }
