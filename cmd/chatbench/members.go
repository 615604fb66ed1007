package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// transport is how members reach a server: chatd over gRPC, or the raw TCP
// baseline. Both carry the same texts, and number each member's events
// without gaps.
type transport interface {
	// join connects m, joins it under m.name (with m.deviceKey() if it is
	// not the member's first device) and waits for the welcome. It
	// returns the welcome: its seq (every later event m receives is seq+1,
	// seq+2, …) and how many users it lists. The stream lives until ctx
	// ends or the transport is closed.
	join(ctx context.Context, m *member) (client, welcome, error)
	// close closes every connection the transport opened.
	close()
}

// client is one joined member's session.
type client interface {
	// send sends a message. Only the member's sender goroutine calls it
	// (see member.transmit).
	send(text []byte) error
	// sendPrivate sends text to the user named to alone. A move calls it
	// before the stream is the member's (see settleText).
	sendPrivate(to, text string) error
	// joinChannel asks to enter a channel (--channels); the join calls it
	// before the member's receive goroutine starts.
	joinChannel(name string) error
	// typing says the member is typing in channel ("": general), or
	// stopped (--typers). Only the member's typer goroutine calls it.
	typing(channel string, stopped bool) error
	// receive reads events and hands them to m until the session ends, and
	// returns why it ended: errSlowDropped if the server dropped m as too
	// slow.
	receive(m *member) error
	// close lets go of a stream that has ended, and of its connection if
	// it is the member's own.
	close()
}

// welcome is what a member learns from its welcome.
type welcome struct {
	seq       uint64 // the welcome's seq
	online    uint64 // users online, the member included
	token     string // the resume token, if the server gives one
	complete  bool   // a resume's welcome said RECOVERY_COMPLETE
	deviceKey string // what the member's other devices join with, if the server gives one
}

// errSlowDropped is how a session that the server dropped as too slow ends.
var errSlowDropped = errors.New("dropped by the server as too slow")

// epoch is the origin of the timestamps in message texts. Senders and
// members live in this one process, so a monotonic clock serves both ends
// and wall-clock steps cannot skew latencies.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// member is one session: one device of a member (--devices), the only one
// by default. Its receive goroutine owns the unexported counters below and
// publishes through the atomic ones what other goroutines need while the
// run goes on; the rest is read only after that goroutine ends.
type member struct {
	idx  int     // the member (the user), from 0: every device of it has the same
	dev  int     // which of the member's devices, from 0 (the first, which joins as a new user)
	name string  // the member's user name, the same on every device
	snd  *sender // nil unless this member sends (only ever on its first device)
	typ  *typer  // nil unless this member types (--typers; a first device that does not send)

	// The device key, for the member's other devices. On the first
	// device, key is set from its welcome before keyed is closed; the
	// other devices point at it with first, and wait for keyed to join.
	first *member
	key   string
	keyed chan struct{}

	// The session's stream. The join sets it before the receive goroutine
	// starts; a move (move.go) takes it away and puts another in its
	// place, and the sender sends under mu, so that each message goes out
	// on a stream before its move begins, or waits for the next stream.
	mu      sync.Mutex
	client  client        // nil while the member moves
	changed chan struct{} // closed when client changes; then replaced
	mayMove bool          // a stream that ends UNAVAILABLE is resumed elsewhere
	joined  bool          // welcomed: counts as a member of node home
	home    int           // the node it joined on (an index in the servers)
	node    int           // the node its stream is on now
	token   string        // its resume token

	// With --channels N, the member is in general and in channel
	// "c<group>", group = idx mod N, which is also where it sends if it
	// sends; it should receive the messages of the senders of its group
	// only. Without, group is 0 for everyone and chanName is empty.
	group    int
	chanName string
	channels int // N, or 0

	// Owned by the receive goroutine.
	next    []uint64 // per sender: the message number expected next
	got     []uint64 // per sender: distinct messages received
	hist    *histogram
	lastSeq uint64
	dup     uint64 // message numbers at or below one already seen
	seqGaps uint64 // events whose seq was not the previous one + 1
	foreign uint64 // messages chatbench did not send
	// misdelivered: messages of a sender in another channel than the
	// member's, which chatd should never have sent it.
	misdelivered uint64
	rejected     string // the first rejection's reason
	flaps        uint64 // user_left events, and user_joined events of a resume
	moves        []move // each time its stream ended and it resumed elsewhere, or tried to
	doubt        window // a sender's messages in doubt since its last move
	inDoubt      uint64 // a sender's messages put in doubt by its moves, once settled
	// creditFrom: echoes of the messages numbered below it give the
	// sender no credit, which it was given back when it moved.
	creditFrom uint64

	// Published while the run goes on.
	received atomic.Uint64 // distinct benchmark messages
	joins    atomic.Uint64 // users the member knows joined: its welcome's, then each user_joined
	lastRecv atomic.Int64  // when the last benchmark message came (see now)
	// inChannel: the member's own channel_joined for chanName came, so
	// messages sent there from now on reach it.
	inChannel atomic.Bool
	moving    atomic.Bool // between its stream's end and its resume's welcome
	// typingEvents counts the typing events received (unnumbered, not
	// benchmark messages); typingShown is whether the last one showed
	// anyone typing.
	typingEvents atomic.Uint64
	typingShown  atomic.Bool

	// Set when the receive goroutine ends, before done is closed.
	done   chan struct{}
	endErr error
	early  bool // ended before the teardown: dropped, or an error
}

// sender is the sending side of a member that sends.
type sender struct {
	credits  chan struct{} // saturated mode: one per message that may be sent
	sent     atomic.Uint64
	rejected atomic.Uint64
	sendErr  error // set by the sender goroutine before it ends

	// A move puts the messages it had sent but not yet seen come back in
	// doubt (see window); they are settled once its resume has replayed
	// what it missed.
	unsettled   atomic.Bool   // some are in doubt now
	unconfirmed atomic.Uint64 // in doubt, and never came back: not sent, as far as anyone is concerned
	// stopRefused counts refusals by a node that was stopping: told, so
	// not a failure of the run.
	stopRefused atomic.Uint64
	mu          sync.Mutex // guards refused
	refused     []uint64   // the numbers of the messages refused, when the server names them
}

// newMember makes member idx of a run with that many senders, spread
// over channels channels (0: everyone in general only).
func newMember(idx, senders, channels int) *member {
	m := &member{
		idx:   idx,
		name:  fmt.Sprintf("m%05d", idx+1),
		next:  make([]uint64, senders),
		got:   make([]uint64, senders),
		done:  make(chan struct{}),
		keyed: make(chan struct{}),
	}
	if channels > 0 {
		m.group, m.channels = idx%channels, channels
		m.chanName = channelName(m.group)
	}
	return m
}

// newDevice makes device dev (from 1) of first's member: a session of its
// own, under the same name, in the same channel, that never sends.
func newDevice(first *member, dev int) *member {
	m := newMember(first.idx, len(first.next), first.channels)
	m.dev, m.first = dev, first
	return m
}

// deviceKey is the key m joins with: its first device's (which it must
// wait for, see keyed), or none for the first device itself.
func (m *member) deviceKey() string {
	if m.first == nil {
		return ""
	}
	return m.first.key
}

// String names the session in messages: the member, and which device if
// it is not the first.
func (m *member) String() string {
	if m.dev == 0 {
		return m.name
	}
	return fmt.Sprintf("%s (device %d)", m.name, m.dev+1)
}

// channelName is the name of the channel of group k (--channels).
func channelName(k int) string { return "c" + strconv.Itoa(k) }

// groupOf is the group of member idx: that of its channel, with N
// channels; 0 without.
func groupOf(idx, channels int) int {
	if channels == 0 {
		return 0
	}
	return idx % channels
}

// seq checks that an event's seq follows the last one: chatd numbers each
// session's events with no gaps. Answers to a request carry seq 0.
func (m *member) seq(seq uint64) {
	if seq == 0 {
		return
	}
	if seq != m.lastSeq+1 {
		m.seqGaps++
	}
	m.lastSeq = seq
}

// reject counts a refused send, or a refused typing request of a typer:
// the sender may send another. clientID, if set, is the refused message's
// text (see grpcTransport.tag).
func (m *member) reject(reason, clientID string) {
	if m.snd == nil {
		if m.typ != nil {
			// A typer sends nothing else.
			m.typ.rejected.Add(1)
			if m.rejected == "" {
				m.rejected = reason
			}
		}
		return
	}
	if m.rejected == "" {
		m.rejected = reason
	}
	if strings.Contains(reason, "shutting down") {
		m.snd.stopRefused.Add(1)
	}
	if _, n, _, ok := parseText(clientID); ok {
		m.snd.mu.Lock()
		m.snd.refused = append(m.snd.refused, n)
		m.snd.mu.Unlock()
	}
	m.snd.rejected.Add(1)
	m.credit()
}

// credit lets the sender send one more message (saturated mode).
func (m *member) credit() {
	select {
	case m.snd.credits <- struct{}{}:
	default: // rate mode, or a credit per message already waiting
	}
}

// onMessage accounts for one message received by m. It is generic so that
// gRPC's strings and the baseline's byte slices are parsed without copies.
func onMessage[T ~string | ~[]byte](m *member, text T) {
	from, n, sentAt, ok := parseText(text)
	if !ok || from >= len(m.next) {
		m.foreign++
		return
	}
	if m.chanName != "" && groupOf(from, m.channels) != m.group {
		m.misdelivered++
		return
	}
	if n < m.next[from] {
		// Each sender's messages come in the order sent, so this is a
		// duplicate or a reordering; either breaks chatd's contract.
		m.dup++
		return
	}
	t := now()
	m.next[from] = n + 1
	m.got[from]++
	if m.hist == nil {
		m.hist = new(histogram) // only members that receive messages pay for one
	}
	m.hist.record(time.Duration(t - sentAt))
	m.received.Add(1)
	m.lastRecv.Store(t)
	if from == m.idx && m.snd != nil {
		if m.doubt.open {
			if n >= m.doubt.hi {
				// Sent after the move, so every message in doubt that
				// the chat took came back before it.
				m.settle()
			} else if n >= m.doubt.lo {
				m.doubt.confirmed++
			}
		}
		if n >= m.creditFrom {
			m.credit() // our own echo is the acknowledgement
		}
	}
}

// appendText appends the text of message n from sender `from`:
// "b:<from>:<n>:<nanoseconds since epoch>".
func appendText(b []byte, from int, n uint64, sentAt int64) []byte {
	b = append(b, "b:"...)
	b = strconv.AppendInt(b, int64(from), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, sentAt, 10)
}

// parseText reads a text made by appendText, without allocating.
func parseText[T ~string | ~[]byte](t T) (from int, n uint64, sentAt int64, ok bool) {
	if len(t) < 2 || t[0] != 'b' || t[1] != ':' {
		return 0, 0, 0, false
	}
	var f [3]uint64
	i := 2
	for k := range f {
		start := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' && i-start < 19 {
			f[k] = f[k]*10 + uint64(t[i]-'0')
			i++
		}
		if i == start {
			return 0, 0, 0, false
		}
		if k < 2 {
			if i >= len(t) || t[i] != ':' {
				return 0, 0, 0, false
			}
			i++
		}
	}
	if i != len(t) || f[0] > 1<<30 {
		return 0, 0, 0, false
	}
	return int(f[0]), f[1], int64(f[2]), true
}
