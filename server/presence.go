package server

import (
	"net/netip"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file moves members between their states (see memberState): a stream
// attaches (online), its node stops (held), it ends (parked), a deadline
// passes (forgotten). Nodes heard from or given up for dead, which hold or
// park their users, are nodes.go's. Every function here must be called
// with Hub.mu held.

// attachLocked gives m a new stream on node and, if m was offline, puts it
// at the end of the online list. The stream is returned if it is on this
// node; p is what this node kept of the join.
func (h *Hub) attachLocked(m *member, node string, p *pending) *Session {
	wasOnline := m.online()
	if m.state == stateHeld {
		h.held--
	}
	h.attaches++
	m.state, m.node, m.attach = stateOnline, node, h.attaches
	var s *Session
	if node == h.node {
		s = newSession(m, h.cfg.QueueSize, h.cfg.QueueBytes)
		m.att = s
		h.countLocked(m, p)
	}
	if wasOnline {
		return s
	}
	h.users, h.channelList = nil, nil
	for _, ch := range m.channels {
		ch.online++
	}
	m.prev = h.tail
	if h.tail != nil {
		h.tail.next = m
	} else {
		h.head = m
	}
	h.tail = m
	return s
}

// countLocked counts m's session against the address its new stream on
// this node comes from, taking over what the join counted (p.counted) or
// moving m's count from where it was.
func (h *Hub) countLocked(m *member, p *pending) {
	if h.lim == nil || p == nil || !p.client.IsValid() {
		return
	}
	switch {
	case m.client.IsValid() && p.counted:
		h.lim.ReleaseSession(m.client)
	case m.client.IsValid():
		h.lim.MoveSession(m.client, p.client)
	case !p.counted:
		h.lim.AddSession(p.client)
	}
	m.client, p.counted = p.client, false
}

// detachLocked takes m's stream away and m off the online list.
func (h *Hub) detachLocked(m *member) {
	h.users, h.channelList = nil, nil
	for _, ch := range m.channels {
		ch.online--
	}
	if m.state == stateHeld {
		h.held--
	}
	// Offline until the caller parks or forgets it.
	m.state, m.att, m.node, m.attach = stateOffline, nil, "", 0
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		h.head = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		h.tail = m.prev
	}
	m.prev, m.next = nil, nil
}

// parkLocked takes m offline after its stream ended without a logout, and
// keeps it, still receiving its events, for the resume grace period.
func (h *Hub) parkLocked(m *member, reason chatv1.LeaveReason) {
	h.detachLocked(m)
	if h.cfg.ResumeGrace > 0 {
		m.state = stateParked
		h.parked[m] = struct{}{}
		h.deadlineLocked(m)
	} else {
		h.forgetLocked(m)
	}
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
		UserLeft: &chatv1.UserLeft{User: m.user, Reason: reason},
	}}), m)
}

// unparkLocked ends m's grace period because it is coming back.
func (h *Hub) unparkLocked(m *member) {
	delete(h.parked, m)
	h.undeadlineLocked(m)
}

// holdLocked keeps m on the online list without a stream until its
// deadline: its node stopped, and its client is reconnecting to another.
func (h *Hub) holdLocked(m *member) {
	if s := m.att; s != nil {
		s.endLocked(errShutdown, chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
	}
	if m.state != stateHeld {
		h.held++
	}
	m.state, m.att, m.node, m.attach = stateHeld, nil, "", 0
	h.deadlineLocked(m)
}

// deadlineLocked sets m's deadline, the resume grace period from now.
// Every node applies it when the log's clock passes it, all at the same
// point of the log (see Cluster.armTickLocked).
func (h *Hub) deadlineLocked(m *member) {
	m.gen++
	m.deadline = h.now.Add(h.cfg.ResumeGrace)
	// The chat's clock never goes back, so deadlines come in order.
	h.deadline = append(h.deadline, expiry{m: m, gen: m.gen, at: m.deadline})
	h.cl.armTickLocked()
}

// undeadlineLocked cancels m's deadline: it is back.
func (h *Hub) undeadlineLocked(m *member) {
	m.gen++
}

// expireLocked ends the holds and parkings whose deadline has passed: a
// held user is announced as gone, and either is forgotten.
func (h *Hub) expireLocked() {
	for len(h.deadline) > 0 && !h.deadline[0].at.After(h.now) {
		e := h.deadline[0]
		h.deadline[0] = expiry{}
		h.deadline = h.deadline[1:]
		m := e.m
		if m.gen != e.gen {
			continue // came back since
		}
		switch m.state {
		case stateParked:
			delete(h.parked, m)
			h.forgetLocked(m)
		case stateHeld:
			h.detachLocked(m)
			h.forgetLocked(m)
			h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
				UserLeft: &chatv1.UserLeft{User: m.user, Reason: chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN},
			}}), m)
		}
	}
	if len(h.deadline) == 0 {
		h.deadline = nil // let a long list's array go
	}
	h.cl.armTickLocked()
}

// forgetLocked ends m's session for good: its name and token are free and
// it is in no channel. Members of its channels were told already (the user
// left, or is parked and offline).
func (h *Hub) forgetLocked(m *member) {
	delete(h.byKey, m.key)
	delete(h.byToken, m.tokenHash)
	for _, k := range m.skels {
		if h.bySkel[k] == m { // a snapshot of older rules may hold look-alikes
			delete(h.bySkel, k)
		}
	}
	h.undeadlineLocked(m)
	h.releaseLocked(m)
	for len(m.channels) > 0 {
		h.exitLocked(m, m.channels[len(m.channels)-1])
	}
	m.resetLog()
}

// releaseLocked stops counting m's session against its client address on
// this node.
func (h *Hub) releaseLocked(m *member) {
	if h.lim != nil && m.client.IsValid() {
		h.lim.ReleaseSession(m.client)
		m.client = netip.Addr{}
	}
}
