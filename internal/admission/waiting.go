package admission

import (
	"container/heap"
	"errors"
	"net/netip"
	"sync"
)

// A WaitingRoom holds the streams that have not sent their join yet: at
// most perAddress of them from one address (see [Key]), and at most
// capacity from everyone.
//
// A stream waiting to join holds its metadata and goroutines and has given
// nothing of itself, so the room must be bounded; but a bound that simply
// refuses newcomers once it is full can be filled by anyone with enough
// addresses (a few hundred, each under its own limit), and then every
// honest client is refused until the attacker's streams time out. So a
// full room takes a newcomer whose address has no stream waiting, always:
// the oldest waiting stream of the address holding the most gives its
// place up, and is told so. An honest client sends its join with its
// stream, so it waits for a moment at most, and holds nothing waiting
// when it opens the next; to push it out, an attacker would have to hold
// no more than it holds (one stream each, from more addresses than the
// room has places) and open a room's worth of newer ones while it waits.
//
// A newcomer whose address has streams waiting already takes a place
// only from an address that would still hold at least as many as its own
// afterwards: places move from the addresses holding the most to those
// holding fewer, never between equals, so attackers that keep re-opening
// the streams they lose cannot make the room churn among themselves, and
// are refused instead, which costs far less than a stream let in and one
// pushed out.
//
// A WaitingRoom is safe for concurrent use.
type WaitingRoom struct {
	capacity, perAddress int

	mu    sync.Mutex // guards the fields below
	n     int        // tickets in the room
	seq   uint64     // the next ticket's: an arrival order
	addrs map[netip.Addr]*waiters
	// holding has every address of addrs, the one to give a place up
	// first at its top (see holding.Less).
	holding holding
}

// waiters are the tickets of one address, oldest first.
type waiters struct {
	key        netip.Addr
	n          int
	head, tail *Ticket
	index      int // in WaitingRoom.holding
}

// A Ticket is one stream's place in a [WaitingRoom], from [WaitingRoom.Enter]
// until [Ticket.Leave], or until the room gives it to a newcomer (see
// [Ticket.Evicted]).
type Ticket struct {
	room       *WaitingRoom
	seq        uint64
	evicted    chan struct{}
	in         bool     // still in the room; guarded by room.mu
	w          *waiters // guarded by room.mu
	prev, next *Ticket  // within w; guarded by room.mu
}

// NewWaitingRoom returns a room for capacity streams (at least 1), at
// most perAddress of them from one address (0: no limit but capacity).
func NewWaitingRoom(capacity, perAddress int) *WaitingRoom {
	return &WaitingRoom{capacity: max(capacity, 1), perAddress: perAddress, addrs: make(map[netip.Addr]*waiters)}
}

// roomKey is what a's streams are counted under: its Key, or the zero Addr
// for streams without an address (in-memory connections), which share the
// room but have no limit of their own.
func roomKey(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.Addr{}
	}
	return Key(a)
}

// Why [WaitingRoom.Enter] refuses a stream.
var (
	// ErrCrowded: its address has as many streams waiting as one may.
	ErrCrowded = errors.New("too many streams waiting from one address")
	// ErrFull: the room is full, and its address holds as many waiting
	// streams as any other would after giving one up.
	ErrFull = errors.New("waiting room full")
)

// Enter gives a new stream from a a place in the room, or says why not
// (ErrCrowded, ErrFull). If the room is full, the oldest stream of the
// address holding the most may give its place up (see WaitingRoom): its
// ticket's Evicted channel is closed.
func (r *WaitingRoom) Enter(a netip.Addr) (*Ticket, error) {
	k := roomKey(a)
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.addrs[k]
	if r.perAddress > 0 && k.IsValid() && w != nil && w.n >= r.perAddress {
		return nil, ErrCrowded
	}
	if r.n >= r.capacity {
		// v is never w when w holds anything: w would give its place
		// to itself.
		v := r.holding[0]
		if w != nil && (v == w || v.n-1 < w.n+1) {
			return nil, ErrFull
		}
		t := v.head
		r.removeLocked(t)
		close(t.evicted)
	}
	fresh := w == nil
	if fresh {
		w = &waiters{key: k}
		r.addrs[k] = w
	}
	t := &Ticket{room: r, seq: r.seq, evicted: make(chan struct{}), in: true, w: w}
	r.seq++
	if w.tail == nil {
		w.head = t
	} else {
		w.tail.next, t.prev = t, w.tail
	}
	w.tail = t
	w.n++
	r.n++
	if fresh {
		heap.Push(&r.holding, w)
	} else {
		heap.Fix(&r.holding, w.index)
	}
	return t, nil
}

// Len returns how many streams are waiting.
func (r *WaitingRoom) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// removeLocked takes t out of the room. Lock must be held, and t in.
func (r *WaitingRoom) removeLocked(t *Ticket) {
	w := t.w
	if t.prev == nil {
		w.head = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next == nil {
		w.tail = t.prev
	} else {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.w, t.in = nil, nil, nil, false
	w.n--
	r.n--
	if w.n == 0 {
		heap.Remove(&r.holding, w.index)
		delete(r.addrs, w.key)
		return
	}
	heap.Fix(&r.holding, w.index)
}

// Evicted is closed when the room gave t's place to a newcomer: the stream
// should end, and tell its client why.
func (t *Ticket) Evicted() <-chan struct{} { return t.evicted }

// Leave takes t out of the room: its stream joined, or ended. It may be
// called more than once, and after t was evicted.
func (t *Ticket) Leave() {
	r := t.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.in {
		r.removeLocked(t)
	}
}

// holding orders addresses by whom a full room takes a place from first:
// the address with the most streams waiting, and of those the one whose
// oldest stream came first. It is a container/heap.
type holding []*waiters

func (h holding) Len() int { return len(h) }

func (h holding) Less(i, j int) bool {
	if h[i].n != h[j].n {
		return h[i].n > h[j].n
	}
	return h[i].head.seq < h[j].head.seq
}

func (h holding) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *holding) Push(x any) {
	w := x.(*waiters)
	w.index = len(*h)
	*h = append(*h, w)
}

func (h *holding) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}
