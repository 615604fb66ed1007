package server

import (
	"net/netip"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file moves sessions between their states (see sessionState): a stream
// attaches (online), its node stops (held), it ends (parked), a deadline
// passes (forgotten). Nodes heard from or given up for dead, which hold or
// park their users, are nodes.go's. Every function here must be called
// with hub.mu held.

// attachLocked gives sess a new stream on node and, if sess was offline,
// puts it at the end of the online list. The stream is returned if it is
// on this node; p is what this node kept of the join.
func (h *hub) attachLocked(sess *session, node string, p *pending) *stream {
	wasOnline := sess.online()
	if sess.state == stateHeld {
		h.held--
	}
	h.attaches++
	sess.state, sess.node, sess.attach = stateOnline, node, h.attaches
	var s *stream
	if node == h.node {
		s = newStream(sess, h.cfg.QueueSize, h.cfg.QueueBytes)
		sess.stream = s
		h.countLocked(sess, p)
	}
	if wasOnline {
		return s
	}
	h.users, h.channelList = nil, nil
	for _, ch := range sess.channels {
		ch.online++
	}
	sess.prev = h.tail
	if h.tail != nil {
		h.tail.next = sess
	} else {
		h.head = sess
	}
	h.tail = sess
	return s
}

// countLocked counts sess against the address its new stream on
// this node comes from, taking over what the join counted (p.counted) or
// moving sess's count from where it was.
func (h *hub) countLocked(sess *session, p *pending) {
	if h.lim == nil || p == nil || !p.client.IsValid() {
		return
	}
	switch {
	case sess.client.IsValid() && p.counted:
		h.lim.ReleaseSession(sess.client)
	case sess.client.IsValid():
		h.lim.MoveSession(sess.client, p.client)
	case !p.counted:
		h.lim.AddSession(p.client)
	}
	sess.client, p.counted = p.client, false
}

// detachLocked takes sess's stream away and sess off the online list.
func (h *hub) detachLocked(sess *session) {
	h.users, h.channelList = nil, nil
	for _, ch := range sess.channels {
		ch.online--
	}
	if sess.state == stateHeld {
		h.held--
	}
	// Offline until the caller parks or forgets it.
	sess.state, sess.stream, sess.node, sess.attach = stateOffline, nil, "", 0
	if sess.prev != nil {
		sess.prev.next = sess.next
	} else {
		h.head = sess.next
	}
	if sess.next != nil {
		sess.next.prev = sess.prev
	} else {
		h.tail = sess.prev
	}
	sess.prev, sess.next = nil, nil
}

// parkLocked takes sess offline after its stream ended without a logout, and
// keeps it, still receiving its events, for the resume grace period.
func (h *hub) parkLocked(sess *session, reason chatv1.LeaveReason) {
	h.detachLocked(sess)
	if h.cfg.ResumeGrace > 0 {
		sess.state = stateParked
		h.parked[sess] = struct{}{}
		h.deadlineLocked(sess)
	} else {
		h.forgetLocked(sess)
	}
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
		UserLeft: &chatv1.UserLeft{User: sess.user, Reason: reason},
	}}), sess)
}

// unparkLocked ends sess's grace period because it is coming back.
func (h *hub) unparkLocked(sess *session) {
	delete(h.parked, sess)
	h.undeadlineLocked(sess)
}

// holdLocked keeps sess on the online list without a stream until its
// deadline: its node stopped, and its client is reconnecting to another.
func (h *hub) holdLocked(sess *session) {
	if s := sess.stream; s != nil {
		s.endLocked(errShutdown, chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
	}
	if sess.state != stateHeld {
		h.held++
	}
	sess.state, sess.stream, sess.node, sess.attach = stateHeld, nil, "", 0
	h.deadlineLocked(sess)
}

// deadlineLocked sets sess's deadline, the resume grace period from now.
// Every node applies it when the log's clock passes it, all at the same
// point of the log (see Cluster.armTickLocked).
func (h *hub) deadlineLocked(sess *session) {
	sess.gen++
	sess.deadline = h.now.Add(h.cfg.ResumeGrace)
	// The chat's clock never goes back, so deadlines come in order.
	h.deadline = append(h.deadline, expiry{sess: sess, gen: sess.gen, at: sess.deadline})
	h.cl.armTickLocked()
}

// undeadlineLocked cancels sess's deadline: it is back.
func (h *hub) undeadlineLocked(sess *session) {
	sess.gen++
}

// expireLocked ends the holds and parkings whose deadline has passed: a
// held user is announced as gone, and either is forgotten.
func (h *hub) expireLocked() {
	for len(h.deadline) > 0 && !h.deadline[0].at.After(h.now) {
		e := h.deadline[0]
		h.deadline[0] = expiry{}
		h.deadline = h.deadline[1:]
		sess := e.sess
		if sess.gen != e.gen {
			continue // came back since
		}
		switch sess.state {
		case stateParked:
			delete(h.parked, sess)
			h.forgetLocked(sess)
		case stateHeld:
			h.detachLocked(sess)
			h.forgetLocked(sess)
			h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
				UserLeft: &chatv1.UserLeft{User: sess.user, Reason: chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN},
			}}), sess)
		}
	}
	if len(h.deadline) == 0 {
		h.deadline = nil // let a long list's array go
	}
	h.cl.armTickLocked()
}

// forgetLocked ends sess for good: its name and token are free and
// it is in no channel. Members of its channels were told already (the user
// left, or is parked and offline).
func (h *hub) forgetLocked(sess *session) {
	delete(h.byKey, sess.key)
	delete(h.byToken, sess.tokenHash)
	for _, k := range sess.skels {
		if h.bySkel[k] == sess { // a snapshot of older rules may hold look-alikes
			delete(h.bySkel, k)
		}
	}
	h.undeadlineLocked(sess)
	h.releaseLocked(sess)
	for len(sess.channels) > 0 {
		h.exitLocked(sess, sess.channels[len(sess.channels)-1])
	}
	sess.resetReplay()
}

// releaseLocked stops counting sess against its client address on
// this node.
func (h *hub) releaseLocked(sess *session) {
	if h.lim != nil && sess.client.IsValid() {
		h.lim.ReleaseSession(sess.client)
		sess.client = netip.Addr{}
	}
}
