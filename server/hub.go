package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Hub keeps who is online and puts every broadcast event in one order.
//
// Each broadcast event takes the next seq and is queued on every session
// under mu, so all sessions see the same order and a welcome's snapshot is
// exact. Queuing never blocks: a session whose queue is full is dropped as
// too slow (see flushSlowLocked). A Hub is safe for concurrent use.
type Hub struct {
	maxSessions int
	queueSize   int
	idPrefix    string // makes message ids unique across restarts

	closing chan struct{} // closed by Shutdown

	mu     sync.Mutex // guards the fields below and the hub-owned fields of every Session
	seq    uint64     // seq of the last broadcast event
	closed bool       // set by Shutdown; no more joins
	byKey  map[string]*Session
	head   *Session   // oldest session; the list runs in join order
	tail   *Session   // newest session
	slow   []*Session // sessions whose queue overflowed, to drop before mu is released
}

// NewHub returns an empty hub that admits at most maxSessions users and
// queues at most queueSize events per session.
func NewHub(maxSessions, queueSize int) *Hub {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &Hub{
		maxSessions: maxSessions,
		queueSize:   queueSize,
		idPrefix:    hex.EncodeToString(b[:]) + "-",
		byKey:       make(map[string]*Session),
		closing:     make(chan struct{}),
	}
}

// Closing is closed when Shutdown starts, so that streams that have not
// joined yet can end at once instead of holding up the shutdown.
func (h *Hub) Closing() <-chan struct{} { return h.closing }

// Join admits a user and queues its welcome. It refuses an invalid name
// (ErrInvalidUsername), a name already online in any letter case
// (ErrUsernameTaken), a full server (ErrServerFull) and a server that is
// shutting down (ErrShuttingDown).
func (h *Hub) Join(username string) (*Session, error) {
	display, key, err := CheckUsername(username)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, errShutdown
	case h.byKey[key] != nil:
		return nil, &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q is taken: choose another name", display)}
	case len(h.byKey) >= h.maxSessions:
		return nil, &Error{Kind: ErrServerFull, Msg: fmt.Sprintf("server is full (%d users online): try again later", len(h.byKey))}
	}

	ev := h.nextLocked()
	s := newSession(key, &chatv1.User{Username: display, JoinTime: ev.Time}, h.queueSize)
	ev.Event = &chatv1.ChatResponse_UserJoined{UserJoined: &chatv1.UserJoined{User: s.user}}
	h.publishLocked(newEvent(ev)) // to everyone already here

	h.addLocked(s)
	// The snapshot reflects every event up to and including this join, so
	// the welcome carries its seq and the joiner skips its own user_joined.
	s.queue.push(privateEvent(&chatv1.ChatResponse{
		Seq:   ev.Seq,
		Time:  ev.Time,
		Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{You: s.user, OnlineUsers: h.usersLocked()}},
	})) // cannot fail: the queue is new and holds at least one event
	h.flushSlowLocked()
	return s, nil
}

// Send broadcasts a message from s to everyone online, s included: the
// sender's copy, with its clientID, is its acknowledgement. It refuses
// invalid text (ErrInvalidText) and a session that is no longer online
// (ErrNotJoined).
func (h *Hub) Send(s *Session, text, clientID string) error {
	text, err := CleanText(text)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.online {
		return &Error{Kind: ErrNotJoined, Msg: "you are no longer in the chat: join again"}
	}
	ev := h.nextLocked()
	ev.Event = &chatv1.ChatResponse_Message{Message: &chatv1.Message{
		Id:       h.idPrefix + strconv.FormatUint(ev.Seq, 10),
		Sender:   s.user.Username,
		Text:     text,
		ClientId: clientID,
	}}
	h.publishLocked(newEvent(ev))
	h.flushSlowLocked()
	return nil
}

// Leave takes s off the online list and tells everyone why. On a logout s
// is told too, as the last event of its session. Leave reports whether s
// was still online: it does nothing for a session the hub already dropped.
func (h *Hub) Leave(s *Session, reason chatv1.LeaveReason) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.online {
		return false
	}
	h.removeLocked(s)
	ev := h.nextLocked()
	ev.Event = &chatv1.ChatResponse_UserLeft{UserLeft: &chatv1.UserLeft{User: s.user, Reason: reason}}
	e := newEvent(ev)
	if reason == chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
		h.deliverLocked(s, e)
	}
	h.publishLocked(e)
	h.flushSlowLocked()
	return true
}

// Reject queues a refusal of one of s's requests for s alone. A rejection is
// not part of the global order, so it carries seq 0.
func (h *Hub) Reject(s *Session, clientID string, err error) {
	st := Status(err)
	ev := privateEvent(&chatv1.ChatResponse{
		Time: timestamppb.Now(),
		Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{
			ClientId: clientID,
			Code:     int32(st.Code()),
			Reason:   st.Message(),
		}},
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.online {
		return
	}
	h.deliverLocked(s, ev)
	h.flushSlowLocked()
}

// Users returns everyone online, in join order.
func (h *Hub) Users() []*chatv1.User {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usersLocked()
}

// Shutdown ends every session with UNAVAILABLE and refuses new joins. It
// broadcasts no user_left events: every session is ending at once, and
// telling each of N users about the other N-1 would only delay the end.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		close(h.closing)
	}
	h.closed = true
	for s := h.head; s != nil; {
		next := s.next
		s.online, s.prev, s.next = false, nil, nil
		s.endLocked(errShutdown, chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
		s = next
	}
	h.head, h.tail = nil, nil
	clear(h.byKey)
}

// nextLocked starts the next broadcast event. Lock must be held.
func (h *Hub) nextLocked() *chatv1.ChatResponse {
	h.seq++
	return &chatv1.ChatResponse{Seq: h.seq, Time: timestamppb.New(time.Now())}
}

// publishLocked queues ev for every online session. The same event, encoded
// once, goes to every queue. Lock must be held, and flushSlowLocked called
// before it is released.
func (h *Hub) publishLocked(ev *Event) {
	for s := h.head; s != nil; s = s.next {
		h.deliverLocked(s, ev)
	}
}

// deliverLocked queues ev for s without blocking. If the queue is full, s
// gets nothing more (so what it does get has no gap) and is marked to be
// dropped. Lock must be held.
func (h *Hub) deliverLocked(s *Session, ev *Event) {
	if s.overflowed {
		return
	}
	if !s.queue.push(ev) {
		s.overflowed = true
		h.slow = append(h.slow, s)
	}
}

// flushSlowLocked drops every session whose queue overflowed and tells the
// others. Telling them can overflow more queues; the loop takes those too.
// Lock must be held.
func (h *Hub) flushSlowLocked() {
	for len(h.slow) > 0 {
		s := h.slow[0]
		h.slow = h.slow[1:]
		if s.online {
			h.removeLocked(s)
			ev := h.nextLocked()
			ev.Event = &chatv1.ChatResponse_UserLeft{UserLeft: &chatv1.UserLeft{User: s.user, Reason: chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW}}
			h.publishLocked(newEvent(ev))
		}
		// A session that logged out with a full queue is no longer online
		// but is ended all the same: it cannot be sent all it is owed.
		s.endLocked(&Error{Kind: ErrTooSlow, Msg: fmt.Sprintf("disconnected: you fell more than %d events behind; reconnect", h.queueSize)}, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
	}
	h.slow = nil
}

// addLocked appends s to the online list. Lock must be held.
func (h *Hub) addLocked(s *Session) {
	s.online = true
	h.byKey[s.key] = s
	s.prev = h.tail
	if h.tail != nil {
		h.tail.next = s
	} else {
		h.head = s
	}
	h.tail = s
}

// removeLocked takes s off the online list. Lock must be held.
func (h *Hub) removeLocked(s *Session) {
	s.online = false
	delete(h.byKey, s.key)
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		h.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		h.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// usersLocked lists the online users in join order. Lock must be held.
func (h *Hub) usersLocked() []*chatv1.User {
	users := make([]*chatv1.User, 0, len(h.byKey))
	for s := h.head; s != nil; s = s.next {
		users = append(users, s.user)
	}
	return users
}
