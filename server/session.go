package server

import (
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// Session is one joined user: its entry in the hub and its queue of events
// waiting to be written to its stream.
type Session struct {
	key   string       // case-mapped username; unique among online sessions
	user  *chatv1.User // never modified after the join
	queue chan *Event

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
		queue: make(chan *Event, queueSize),
		ended: make(chan struct{}),
	}
}

// User returns the user this session joined as.
func (s *Session) User() *chatv1.User { return s.user }

// Ended is closed when the hub has ended the session; see [Session.EndErr].
func (s *Session) Ended() <-chan struct{} { return s.ended }

// EndErr says why the hub ended the session, once Ended is closed.
func (s *Session) EndErr() error { return s.endErr }

// endLocked ends the session from the hub's side. Hub.mu must be held.
func (s *Session) endLocked(err error, reason chatv1.LeaveReason) {
	if s.endClosed {
		return
	}
	s.endClosed = true
	s.endErr, s.endReason = err, reason
	close(s.ended)
}

// Events is the session's queue of events to send, in order. Only the
// session's writer may receive from it.
func (s *Session) Events() <-chan *Event { return s.queue }
