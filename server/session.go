package server

import (
	"net/netip"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// sessionState is where a user's session stands.
type sessionState uint8

const (
	// stateOffline: taken off the online list, and about to be parked or
	// forgotten (never so once the hub's lock is released).
	stateOffline sessionState = iota
	// stateOnline: a stream is attached, on some node (on this one if
	// stream is set). The user is on the online list.
	stateOnline
	// stateHeld: the node its stream was on stopped on purpose. The user
	// stays on the online list, unannounced, until its deadline, while its
	// client reconnects to another node; then it is announced as gone.
	stateHeld
	// stateParked: its stream ended without a logout and everyone was
	// told. Its name and events are kept for a resume until its deadline.
	stateParked
)

// session is one device's lasting presence in the chat, as the hub keeps
// it: its user (person) may have several. It outlives the stream that
// created it: after a disconnect it is parked for the resume grace period,
// still receiving (into its replay) the events of its user's channels, and
// a join with its token attaches a new stream to it (see stream,
// stream.go). In a cluster every node keeps every session, so that any
// node can resume any session; only the node its stream is on has the
// stream (session.stream).
//
// Every field is owned by the hub: read and written only with hub.mu held.
type session struct {
	person    *person // its user, which it shares with the user's other devices
	tokenHash string  // SHA-256 of the resume token; unique among sessions

	state  sessionState
	node   string  // the node its stream is on, while online
	attach uint64  // numbers its stream among all attachments, while online
	stream *stream // its stream, while online on this node; nil otherwise

	client netip.Addr // the client address it counts against on this node; zero for none
	addr   string     // the client address it last joined from, for the admins
	since  time.Time  // when its stream attached, while online

	// seq numbers the session's events. replay keeps the last numbered events
	// for a resume, up to and including seq: their seqs follow from
	// there, so it needs no room for them. A nil entry stands for a
	// channel's catch-up, which is not kept (see channelCatchUpLocked).
	seq    uint64
	replay eventBuffer

	gen      uint64    // counts holds and parkings, so that a stale deadline does nothing
	deadline time.Time // ends a hold or a parking
}

// key is its user's key.
func (sess *session) key() string { return sess.person.key }

// user is its user as others see it.
func (sess *session) user() *chatv1.User { return sess.person.user }

// resetReplay empties the replay: a resume can give nothing before this
// point.
func (sess *session) resetReplay() { sess.replay.reset() }

// replayFloor is the seq of the newest event a resume can no longer be given:
// every event after it is in the replay.
func (sess *session) replayFloor() uint64 { return sess.seq - uint64(sess.replay.len()) }

// missed returns the replay's events after lastSeq, numbered, or false if
// the replay cannot give every one of them.
func (sess *session) missed(lastSeq uint64) ([]delivery, bool) {
	if lastSeq < sess.replayFloor() || lastSeq > sess.seq {
		return nil, false
	}
	evs := sess.replay.last(int(sess.seq - lastSeq))
	ds := make([]delivery, len(evs))
	for i, ev := range evs {
		if ev == nil {
			return nil, false
		}
		ds[i] = delivery{Seq: lastSeq + 1 + uint64(i), event: ev}
	}
	return ds, true
}

// online reports whether the session keeps its user online: a stream is
// attached, or its node stopped and it is held for a reconnection.
func (sess *session) online() bool { return sess.state == stateOnline || sess.state == stateHeld }
