package server

// ring keeps the last items pushed to it, up to a limit given at each push.
// It grows only as items arrive, so a quiet channel or session holds
// little. The zero value is an empty ring. Not safe for concurrent use: the
// hub guards every ring with its lock.
type ring[T any] struct {
	buf   []T
	start int // index of the oldest item
	n     int // number of items
}

// push adds v as the newest item. If the ring already holds limit items,
// the oldest is dropped and returned with true. With limit 0 nothing is
// kept: v itself is returned as dropped.
func (r *ring[T]) push(v T, limit int) (dropped T, ok bool) {
	if limit <= 0 {
		return v, true
	}
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = v
		r.n++
		return dropped, false
	}
	if len(r.buf) < limit {
		// Grow by doubling, up to the limit, and straighten the items out.
		nb := make([]T, min(max(2*len(r.buf), 8), limit))
		r.copyTo(nb)
		r.buf, r.start = nb, 0
		r.buf[r.n] = v
		r.n++
		return dropped, false
	}
	// Full: overwrite the oldest.
	dropped = r.buf[r.start]
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
	return dropped, true
}

// popOldest removes and returns the oldest item; the ring must not be
// empty.
func (r *ring[T]) popOldest() T {
	var zero T
	v := r.buf[r.start]
	r.buf[r.start] = zero
	r.start = (r.start + 1) % len(r.buf)
	r.n--
	return v
}

// len returns how many items the ring holds.
func (r *ring[T]) len() int { return r.n }

// items returns the items, oldest first, in a new slice.
func (r *ring[T]) items() []T {
	out := make([]T, r.n)
	r.copyTo(out)
	return out
}

// last returns the newest k items (all of them if k is larger), oldest
// first, in a new slice.
func (r *ring[T]) last(k int) []T {
	k = min(k, r.n)
	out := make([]T, k)
	for i := range k {
		out[i] = r.buf[(r.start+r.n-k+i)%len(r.buf)]
	}
	return out
}

func (r *ring[T]) copyTo(dst []T) {
	for i := range r.n {
		dst[i] = r.buf[(r.start+i)%len(r.buf)]
	}
}

// eventBuffer keeps the last events pushed to it, bounded both in number
// and in the memory they take (see event.bytes): a session's replay, a
// channel's history. A nil event stands for one that is not kept (a
// channel's catch-up, in a replay) and costs nothing. The zero value is
// empty. Not safe for concurrent use: the hub guards every buffer with its
// lock.
type eventBuffer struct {
	events ring[*event]
	bytes  int // what the events kept take, by event.bytes
}

// push appends ev, dropping the oldest events past maxEvents or maxBytes.
func (b *eventBuffer) push(ev *event, maxEvents, maxBytes int) {
	if dropped, ok := b.events.push(ev, maxEvents); ok {
		b.bytes -= dropped.bytes()
	}
	b.bytes += ev.bytes()
	for b.bytes > maxBytes && b.events.len() > 0 {
		b.bytes -= b.events.popOldest().bytes()
	}
}

// len returns how many events the buffer holds.
func (b *eventBuffer) len() int { return b.events.len() }

// items returns the events, oldest first, in a new slice.
func (b *eventBuffer) items() []*event { return b.events.items() }

// last returns the newest k events, oldest first, in a new slice.
func (b *eventBuffer) last(k int) []*event { return b.events.last(k) }

// reset empties the buffer and lets go of its memory.
func (b *eventBuffer) reset() { *b = eventBuffer{} }
