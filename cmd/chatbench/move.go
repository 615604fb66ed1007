package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatd/chatd/chatclient"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is a member's side of a rolling restart (--restart-node): when
// its node stops, its stream ends with UNAVAILABLE ("server shutting down,
// reconnect later"), and it does what chatctl does (chatclient.Retry, as
// cmd/chatctl's reconnect.go): it joins another node of the cluster with its
// resume token and the seq of the last event it got, and goes on from the
// welcome, which should say RECOVERY_COMPLETE and be followed by every event
// it missed, numbered on from that seq. It keeps checking every message, once
// and in order, across the move.
//
// A sender's messages that were on their way when its stream ended are in
// doubt: each either reached the chat's log before the node stopped, and
// then everyone gets it, the sender included, from its resume's replay, or
// it did not, and then nobody does. The sender cannot know which until the
// replay is over; it knows that once something it sent after the move comes
// back, as everything before it in the log comes first. So a move opens a
// window over the messages in doubt, and it is settled either by the
// sender's first message after the move or, if the window is not empty, by
// a private message to itself that the mover sends as soon as it is
// welcomed (settleText). Messages in doubt that never came back are not
// sent: no member is expected to get them, and one that reaches a member
// anyway, but not its sender, is lost to its sender (see result.account).

// settleText is the private message a moved sender sends itself to learn
// that its resume's replay is over.
const settleText = "chatbench: replay over?"

// resumeTimeout bounds one resume attempt, from dialling to the welcome.
const resumeTimeout = 5 * time.Second

// window is a sender's messages in doubt after a move: those numbered lo
// to hi-1, of which confirmed have come back so far.
type window struct {
	open      bool
	lo, hi    uint64
	confirmed uint64
	refused   uint64 // refused before the stream ended (a stopping node says so): not in doubt
}

// move is one time a member's stream ended and it resumed on another
// node, or tried to.
type move struct {
	from, to int    // nodes (indexes in the servers); to is -1 if it never got back
	end      int64  // when its stream ended (see now)
	back     int64  // when its resume was welcomed; 0 if it never was
	attempts int    // resume attempts
	complete bool   // the welcome said RECOVERY_COMPLETE
	received uint64 // messages it had received when the stream ended
	err      error  // why it gave up, if it did
}

// resumer is a transport that can take a member's session back on a node.
type resumer interface {
	// resume joins m on node (an index in the transport's addresses) with
	// m's resume token and lastSeq and waits for the welcome.
	resume(ctx context.Context, m *member, node int, lastSeq uint64) (client, welcome, error)
}

// mover moves the members whose stream ends with UNAVAILABLE to another
// node. Member i's nodes are tried in turn from the one after where it is,
// going round, so that the node that stopped is tried last.
type mover struct {
	tr      resumer
	nodes   int
	timeout time.Duration // a member that is not back within it gives up
}

// movable reports whether a stream that ended with err should be resumed
// on another node: its node said it is going away, or the connection to it
// broke.
func movable(err error) bool { return status.Code(err) == codes.Unavailable }

// move takes m, whose stream just ended with lost, to another node, and
// returns its new stream, or why it could not. It runs on m's receive
// goroutine.
func (mv *mover) move(ctx context.Context, m *member, lost error) (client, error) {
	rec := move{from: m.node, to: -1, end: now(), received: m.received.Load()}
	m.moving.Store(true)
	m.mu.Lock()
	old := m.client
	m.setClient(nil)
	m.openDoubt()
	m.mu.Unlock()
	old.close()

	c, err := mv.resume(ctx, m, &rec)
	if err != nil {
		rec.err = err
		m.moves = append(m.moves, rec)
		// Wake the sender, which sees m end and stops.
		m.mu.Lock()
		m.setClient(nil)
		m.mu.Unlock()
		m.moving.Store(false)
		return nil, fmt.Errorf("stream ended (%v) and could not resume on another node within %s: %w", status.Convert(lost).Message(), mv.timeout, err)
	}
	m.moves = append(m.moves, rec)
	m.mu.Lock()
	m.setClient(c)
	m.mu.Unlock()
	if m.snd != nil {
		// What was in flight will not come back as credit (see
		// creditFrom): the window is whole again.
		for range cap(m.snd.credits) {
			m.credit()
		}
	}
	m.moving.Store(false)
	return c, nil
}

// resume tries the nodes in turn, with backoff, until one welcomes m back:
// chatclient.Retry, as chatctl's reconnection, so that chatbench measures
// what chatctl's and chatclient's users do (moving on to the next node
// after a moment, waiting longer each round of the nodes). It records the
// attempts and the welcome in rec.
func (mv *mover) resume(ctx context.Context, m *member, rec *move) (client, error) {
	var (
		c client
		w welcome
	)
	r := chatclient.Retry{Servers: mv.nodes, Lost: m.node, Deadline: time.Now().Add(mv.timeout), Retryable: retryable}
	node, err := r.Do(ctx, func(ctx context.Context, node int) error {
		rec.attempts++
		var err error
		c, w, err = mv.tr.resume(ctx, m, node, m.lastSeq)
		return err
	})
	if err != nil {
		return nil, err
	}
	rec.back, rec.to, rec.complete = now(), node, w.complete
	if w.complete && w.seq != m.lastSeq {
		// Complete, the welcome's seq is the join's last_seq.
		m.seqGaps++
	}
	m.lastSeq, m.node = w.seq, node
	if m.doubt.open {
		// If this fails, the new stream broke already: its receive
		// says why, and the next move sends another.
		_ = c.sendPrivate(m.name, settleText)
	}
	return c, nil
}

// retryable reports whether a failed resume attempt may succeed if tried
// again, perhaps on another node: as chatclient.Retryable says for a
// status, and always for an error without one, which is the transport's
// (a node that could not be reached, a welcome that did not come in
// time), never the join refused.
func retryable(err error) bool {
	if _, ok := status.FromError(err); !ok {
		return true
	}
	return chatclient.Retryable(err)
}

// setClient changes m's stream and wakes whoever waits for it to change.
// mu must be held.
func (m *member) setClient(c client) {
	m.client = c
	if m.changed != nil {
		close(m.changed)
	}
	m.changed = make(chan struct{})
}

// openDoubt puts a sender's messages that were sent but had not come back
// when its stream ended in doubt. mu must be held, so that no message is
// being sent. A move before the last one was settled widens its window.
func (m *member) openDoubt() {
	if m.snd == nil {
		return
	}
	hi := m.snd.sent.Load()
	m.creditFrom = hi
	if m.doubt.open {
		m.doubt.hi = hi
		m.doubt.refused = m.refusedIn(m.doubt.lo, hi)
		return
	}
	// Every message below next[idx] came back, or was lost (and is
	// counted lost).
	if lo := m.next[m.idx]; hi > lo {
		m.doubt = window{open: true, lo: lo, hi: hi, refused: m.refusedIn(lo, hi)}
		m.snd.unsettled.Store(true)
	}
}

// refusedIn counts the messages numbered in [lo, hi) that the server
// refused, saying which.
func (m *member) refusedIn(lo, hi uint64) uint64 {
	m.snd.mu.Lock()
	defer m.snd.mu.Unlock()
	var k uint64
	for _, n := range m.snd.refused {
		if n >= lo && n < hi {
			k++
		}
	}
	return k
}

// settle closes a sender's window of messages in doubt: the resume's
// replay is over, so those that did not come back never will.
func (m *member) settle() {
	if !m.doubt.open {
		return
	}
	m.snd.unconfirmed.Add(m.doubt.hi - m.doubt.lo - m.doubt.confirmed - m.doubt.refused)
	m.inDoubt += m.doubt.hi - m.doubt.lo - m.doubt.refused
	m.doubt = window{}
	m.snd.unsettled.Store(false)
}

// errStopped and errEnded say why transmit sent nothing: the send phase
// is over, or m's session ended.
var (
	errStopped = errors.New("the send phase is over")
	errEnded   = errors.New("the session ended")
)

// transmit sends text on m's stream. While m moves it waits for its new
// stream; a send that fails on a stream that is going away waits for the
// move and goes on the new stream. It gives up when stop is closed, m's
// session ends or ctx does.
func (m *member) transmit(ctx context.Context, text []byte, stop <-chan struct{}) error {
	for {
		m.mu.Lock()
		c, changed := m.client, m.changed
		if c != nil {
			err := c.send(text)
			if err == nil {
				m.snd.sent.Add(1)
			}
			m.mu.Unlock()
			if err == nil || !m.mayMove {
				return err
			}
		} else {
			m.mu.Unlock()
		}
		select {
		case <-changed:
		case <-stop:
			return errStopped
		case <-m.done:
			return errEnded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
