package server

import (
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// Session is one joined user: its entry in the hub and its queue of events
// waiting to be written to its stream.
type Session struct {
	key   string       // case-mapped username; unique among online sessions
	user  *chatv1.User // never modified after the join
	queue *queue

	// ended is closed when the hub ends the session itself (too slow, server
	// shutdown). endErr and endReason are written before the close and never
	// after, so they may be read once ended is closed.
	ended     chan struct{}
	endErr    error
	endReason chatv1.LeaveReason

	// Owned by the hub: read and written only with Hub.mu held.
	online     bool     // on the hub's online list
	overflowed bool     // queue overflowed; gets no more events
	endClosed  bool     // ended has been closed
	prev, next *Session // neighbours on the online list
}

func newSession(key string, user *chatv1.User, queueSize int) *Session {
	return &Session{
		key:   key,
		user:  user,
		queue: newQueue(queueSize),
		ended: make(chan struct{}),
	}
}

// User returns the user this session joined as.
func (s *Session) User() *chatv1.User { return s.user }

// Ended is closed when the hub has ended the session; see [Session.EndErr].
func (s *Session) Ended() <-chan struct{} { return s.ended }

// EndErr says why the hub ended the session, once Ended is closed.
func (s *Session) EndErr() error { return s.endErr }

// isEnded reports whether the hub has ended the session.
func (s *Session) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// endLocked ends the session from the hub's side. Hub.mu must be held.
func (s *Session) endLocked(err error, reason chatv1.LeaveReason) {
	if s.endClosed {
		return
	}
	s.endClosed = true
	s.endErr, s.endReason = err, reason
	close(s.ended)
}

// Ready receives a value when events may be waiting: call Take then.
func (s *Session) Ready() <-chan struct{} { return s.queue.ready }

// Take returns every event waiting for the session, in order, and empties
// its queue. spare, if not nil, is the emptied result of an earlier Take for
// the queue to reuse, so that a steady flow of events allocates nothing.
// Only the session's writer may call it.
func (s *Session) Take(spare []*Event) []*Event { return s.queue.take(spare) }
