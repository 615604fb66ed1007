package server

import (
	"fmt"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// This file queues events for the sessions they concern, and drops the
// sessions that cannot keep up. Every function here must be called with
// hub.mu held.

// broadcastLocked gives ev to every session, online, held or parked,
// except skip's.
func (h *hub) broadcastLocked(ev *event, skip *person) {
	for per := h.head; per != nil; per = per.next {
		if per != skip {
			h.deliverUserLocked(per, ev)
		}
	}
	for sess := range h.parked {
		// Those of a user online were given it above.
		if per := sess.person; !per.listed && per != skip {
			h.deliverLocked(sess, ev)
		}
	}
}

// publishLocked gives ev to every session of every member of ch except
// skip.
func (h *hub) publishLocked(ch *channel, ev *event, skip *person) {
	for _, m := range ch.members {
		if m.per != skip {
			h.deliverUserLocked(m.per, ev)
		}
	}
}

// deliverUserLocked gives ev to every session of per.
func (h *hub) deliverUserLocked(per *person, ev *event) {
	for _, sess := range per.devices {
		h.deliverLocked(sess, ev)
	}
}

// deliverLocked numbers ev for sess, records it in sess's replay (dropping
// the oldest past the resume buffer) and queues it for sess's stream, if it
// is on this node, without blocking. If the queue is full, the stream gets
// nothing more (so what it does get has no gap) and is marked to be
// dropped; the replay keeps recording. flushSlowLocked must be called
// before the lock is released.
func (h *hub) deliverLocked(sess *session, ev *event) {
	sess.seq++
	sess.replay.push(ev, h.cfg.ResumeBuffer, h.cfg.ResumeBufferBytes)
	if s := sess.stream; s != nil {
		h.queueLocked(s, delivery{Seq: sess.seq, event: ev})
	}
}

// deliverCatchUpLocked is deliverLocked for a catch-up: the delivery does
// not count against the stream's queue limit if the stream is forgiving
// (see queue.pushCatchUp), and what sess's replay keeps of it is kept,
// which may be nil (see session.replay). ev may be nil if sess's stream is
// not on this node: only the numbering is kept then.
func (h *hub) deliverCatchUpLocked(sess *session, kept, ev *event) {
	sess.seq++
	sess.replay.push(kept, h.cfg.ResumeBuffer, h.cfg.ResumeBufferBytes)
	switch s := sess.stream; {
	case s == nil:
	case s.forgive && !s.overflowed:
		s.queue.pushCatchUp(delivery{Seq: sess.seq, event: ev})
	default:
		h.queueLocked(s, delivery{Seq: sess.seq, event: ev})
	}
}

// deliverTo is deliverLocked for a stream no longer attached to sess: its
// last event (a logout's own user_left).
func (h *hub) deliverTo(s *stream, sess *session, ev *event) {
	sess.seq++
	h.queueLocked(s, delivery{Seq: sess.seq, event: ev})
}

// replyLocked queues an answer to a request, unnumbered and not kept in
// the replay.
func (h *hub) replyLocked(s *stream, resp *chatv1.ChatResponse) {
	h.queueLocked(s, delivery{event: privateEvent(resp)})
}

// queueLocked queues d for s, or marks s to be dropped if its queue is
// full.
func (h *hub) queueLocked(s *stream, d delivery) {
	if s.overflowed {
		return
	}
	if !s.queue.push(d) {
		s.overflowed = true
		h.slow = append(h.slow, s)
	}
}

// flushSlowLocked drops every stream whose queue overflowed, and takes its
// session offline: the node asks for it in the log, like any disconnect
// (a log of the node's own applies it next), and meanwhile the session's
// events go to its replay only.
func (h *hub) flushSlowLocked() {
	for len(h.slow) > 0 {
		s := h.slow[0]
		h.slow = h.slow[1:]
		if s.session.stream == s && !s.endClosed {
			h.cl.later(h.command(leaveCommand(s, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)))
		}
		if !s.endClosed {
			h.met.slowDrops.Inc()
		}
		// A stream that logged out with a full queue is no longer attached
		// but is ended all the same: it cannot be sent all it is owed.
		s.endLocked(&Error{Kind: ErrTooSlow, Msg: fmt.Sprintf("disconnected: you fell more than %s (or %d KiB) behind; reconnect", count(h.cfg.QueueSize, "event", "events"), h.cfg.QueueBytes>>10)}, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
	}
	h.slow = nil
}
