package server

import (
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
)

// stream is one stream attached to a session: the queue of deliveries its
// writer sends, and how the hub ended it, if it did. A new stream comes
// with each stream that joins or resumes; the session outlives it.
type stream struct {
	session  *session
	attach   uint64          // the session's attachment this stream is; never modified
	user     *chatv1.User    // the user as of this stream's join; never modified
	recovery chatv1.Recovery // what came of the join's resume token; never modified
	resumed  bool            // the join took back an existing session; never modified
	queue    *queue
	inflight chan struct{} // the session's messages on their way through the log (see sendPipelined)
	// cut is set, under hub.mu, when the log shows that this node was
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

	// typed is when the stream's typing in each conversation was last
	// appended (see typingDue). Owned by the stream's reader.
	typed map[string]time.Time

	// Owned by the hub: read and written only with hub.mu held.
	overflowed bool // queue overflowed; gets no more events
	endClosed  bool // ended has been closed
	forgive    bool // catch-ups queued now do not count against the queue's limit
}

func newStream(sess *session, queueSize, queueBytes int) *stream {
	return &stream{
		inflight: make(chan struct{}, pipelineWindow),
		session:  sess,
		attach:   sess.attach,
		user:     sess.user(),
		queue:    newQueue(queueSize, queueBytes),
		ended:    make(chan struct{}),
		// A new stream's catch-up (its welcome and its channels'), or a
		// resume's replay, never counts.
		forgive: true,
	}
}

// typingDue reports whether a typing refresh in conversation conv (see
// typingKey) is due at now, and notes it as sent if so: one every
// typingEvery at most, so that a client that sends one per keystroke
// costs the chat no more than one that follows the rule. Only the
// stream's reader may call it.
func (s *stream) typingDue(conv string, now time.Time) bool {
	if last, ok := s.typed[conv]; ok && now.Sub(last) < typingEvery {
		return false
	}
	if s.typed == nil || len(s.typed) >= maxTypingConvs {
		s.typed = make(map[string]time.Time)
	}
	s.typed[conv] = now
	return true
}

// typingKey names the conversation of a typing or a message, as a
// stream's reader tells them apart: whatever the letter case, and general
// whether named or not. A name that is no valid one is kept as it is:
// the hub refuses it.
func typingKey(channel, recipient string) string {
	if recipient != "" {
		if _, key, err := CheckUsername(recipient); err == nil {
			return "@" + key
		}
		return "@" + recipient
	}
	if channel == "" {
		return "#" + generalChannel
	}
	if _, key, err := CheckChannel(channel); err == nil {
		return "#" + key
	}
	return "#" + channel
}

// maxTypingConvs bounds what a stream's reader keeps of its typing.
const maxTypingConvs = 64

// answered reports whether s's requests are answered: it is attached, or
// it was given up with this node and is about to end (see
// Cluster.cutOffLocked). hub.mu must be held.
func (s *stream) answered() bool { return s.session.stream == s || s.cut.Load() }

// ref names s in a command.
func (s *stream) ref() *clusterv1.Stream {
	return &clusterv1.Stream{UserKey: s.session.key(), Attach: s.attach}
}

// User returns the user this stream joined as.
func (s *stream) User() *chatv1.User { return s.user }

// Ended is closed when the hub has ended the stream; see stream.EndErr.
func (s *stream) Ended() <-chan struct{} { return s.ended }

// EndErr says why the hub ended the stream, once Ended is closed.
func (s *stream) EndErr() error { return s.endErr }

// isEnded reports whether the hub has ended the stream.
func (s *stream) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// endLocked ends the stream from the hub's side. hub.mu must be held.
func (s *stream) endLocked(err *Error, reason chatv1.LeaveReason) {
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
func (s *stream) Take(spare []delivery) []delivery { return s.queue.take(spare) }
