package server

import (
	"net/netip"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file moves sessions between their states (see sessionState), and
// their users on and off the online list: a stream
// attaches (online), its node stops (held), it ends (parked), a deadline
// passes (forgotten). Nodes heard from or given up for dead, which hold or
// park their users, are nodes.go's. Every function here must be called
// with hub.mu held.

// attachLocked gives sess a new stream on node and, if its user was
// offline, puts the user at the end of the online list. The stream is
// returned if it is on this node; p is what this node kept of the join.
func (h *hub) attachLocked(sess *session, node string, p *pending) *stream {
	if sess.state == stateHeld {
		h.held--
	}
	h.attaches++
	sess.state, sess.node, sess.attach, sess.since = stateOnline, node, h.attaches, h.now
	var s *stream
	if node == h.node {
		s = newStream(sess, h.cfg.QueueSize, h.cfg.QueueBytes)
		sess.stream = s
		h.countLocked(sess, p)
	}
	h.listLocked(sess.person)
	return s
}

// listLocked puts per at the end of the online list, unless it is on it.
func (h *hub) listLocked(per *person) {
	if per.listed {
		return
	}
	h.users, h.channelList = nil, nil
	for _, ch := range per.channels {
		ch.online++
	}
	per.listed = true
	h.listed++
	per.prev = h.tail
	if h.tail != nil {
		h.tail.next = per
	} else {
		h.head = per
	}
	h.tail = per
}

// unlistLocked takes per off the online list.
func (h *hub) unlistLocked(per *person) {
	h.users, h.channelList = nil, nil
	for _, ch := range per.channels {
		ch.online--
	}
	per.listed = false
	h.listed--
	h.untypeLocked(per)
	if per.prev != nil {
		per.prev.next = per.next
	} else {
		h.head = per.next
	}
	if per.next != nil {
		per.next.prev = per.prev
	} else {
		h.tail = per.prev
	}
	per.prev, per.next = nil, nil
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

// detachLocked takes sess's stream away, and its user off the online list
// if no other device keeps it there; it reports whether the user went
// offline so.
func (h *hub) detachLocked(sess *session) (wentOffline bool) {
	if sess.state == stateHeld {
		h.held--
	}
	// Offline until the caller parks or forgets it.
	sess.state, sess.stream, sess.node, sess.attach = stateOffline, nil, "", 0
	if per := sess.person; per.listed && !per.online() {
		h.unlistLocked(per)
		return true
	}
	return false
}

// parkLocked takes sess offline after its stream ended without a logout, and
// keeps it, still receiving its events, for the resume grace period. If it
// was its user's last device online, everyone hears that the user left.
func (h *hub) parkLocked(sess *session, reason chatv1.LeaveReason) {
	per := sess.person
	wentOffline := h.detachLocked(sess)
	if h.cfg.ResumeGrace > 0 {
		sess.state = stateParked
		h.parked[sess] = struct{}{}
		h.deadlineLocked(sess)
	} else {
		h.forgetLocked(sess)
	}
	if wentOffline {
		h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
			UserLeft: &chatv1.UserLeft{User: per.user, Reason: reason},
		}}), per)
	}
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
			per := sess.person
			wentOffline := h.detachLocked(sess)
			h.forgetLocked(sess)
			if wentOffline {
				h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
					UserLeft: &chatv1.UserLeft{User: per.user, Reason: chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN},
				}}), per)
			}
		}
	}
	if len(h.deadline) == 0 {
		h.deadline = nil // let a long list's array go
	}
	h.cl.armTickLocked()
}

// forgetLocked ends sess for good: its token is free, and with its user's
// last device, the user's name too, and the user is in no channel.
// Members of its channels were told already (the user left, or is offline
// with its sessions parked).
func (h *hub) forgetLocked(sess *session) {
	delete(h.byToken, sess.tokenHash)
	h.undeadlineLocked(sess)
	h.releaseLocked(sess)
	sess.resetReplay()
	per := sess.person
	per.removeDevice(sess)
	if len(per.devices) > 0 {
		return
	}
	delete(h.byKey, per.key)
	defer h.forgetAccountLocked(per.acct) // once its channels' marks are gone
	for _, k := range per.skels {
		if h.bySkel[k] == per { // a snapshot of older rules may hold look-alikes
			delete(h.bySkel, k)
		}
	}
	for len(per.channels) > 0 {
		h.exitLocked(per, per.channels[len(per.channels)-1])
	}
}

// releaseLocked stops counting sess against its client address on
// this node.
func (h *hub) releaseLocked(sess *session) {
	if h.lim != nil && sess.client.IsValid() {
		h.lim.ReleaseSession(sess.client)
		sess.client = netip.Addr{}
	}
}
