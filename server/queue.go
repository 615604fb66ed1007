package server

import "sync"

// queue is a stream's bounded FIFO of deliveries waiting for its writer.
// It grows only as events arrive, so an idle stream holds almost nothing,
// and its writer takes everything waiting in one go.
type queue struct {
	limit      int           // items
	limitBytes int           // what the items' events take in memory (event.bytes)
	ready      chan struct{} // holds a token while deliveries may be waiting
	// urgent holds a token once the queue is half full: a writer that
	// holds back to let a burst gather (Config.WriteDelay) must send now,
	// or the burst would drop a client that reads perfectly well.
	urgent chan struct{}

	mu    sync.Mutex // guards the fields below
	items []delivery
	bytes int           // what the items pushed by push take
	extra int           // catch-up items, pushed past the limit by pushCatchUp, forgiven until taken
	taken chan struct{} // closed when the writer takes them; nil while extra is 0
}

// closedChan is what catchUpTaken returns when no catch-up is waiting.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func newQueue(limit, limitBytes int) *queue {
	return &queue{limit: limit, limitBytes: limitBytes, ready: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
}

// push adds d unless the queue is full, in items or in bytes, and reports
// whether it did. The events a queue holds are shared, but they are kept
// alive by it: the bound in bytes keeps a client that stops reading from
// holding more than that of long messages.
func (q *queue) push(d delivery) bool {
	q.mu.Lock()
	n := d.event.bytes()
	if len(q.items) >= q.limit+q.extra || q.bytes+n > q.limitBytes {
		q.mu.Unlock()
		return false
	}
	half := halfFull(len(q.items), q.limit+q.extra, q.bytes, q.limitBytes)
	q.bytes += n
	q.items = append(q.items, d)
	first := len(q.items) == 1
	urgent := !half && halfFull(len(q.items), q.limit+q.extra, q.bytes, q.limitBytes)
	q.mu.Unlock()
	if first {
		q.signal()
	}
	if urgent {
		poke(q.urgent)
	}
	return true
}

// halfFull reports whether n items of limit, or bytes of limitBytes, are
// half the queue's room or more.
func halfFull(n, limit, bytes, limitBytes int) bool {
	return 2*n >= limit || 2*bytes >= limitBytes
}

// pushCatchUp adds ds whatever the limit, and does not count them against
// it until the writer has taken them: a catch-up (a welcome, a channel's
// members and history, what a resumed session missed) is made of events
// kept anyway, costs the queue only its slots, and must not make the next
// live event look like the client fell behind.
func (q *queue) pushCatchUp(ds ...delivery) {
	if len(ds) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, ds...)
	q.extra += len(ds)
	if q.taken == nil {
		q.taken = make(chan struct{})
	}
	q.mu.Unlock()
	q.signal()
}

// catchUpTaken returns a channel that is closed once the writer has taken
// everything pushed by pushCatchUp so far. The stream's reader waits on it
// before it reads the next request: a client that keeps reading gets each
// catch-up it asks for before it can ask for another, so no burst of
// requests piles catch-ups up past the queue's limit, and a client that
// stops reading stops being read.
func (q *queue) catchUpTaken() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.taken == nil {
		return closedChan
	}
	return q.taken
}

// forgiving reports whether nothing pushed by pushCatchUp is waiting.
func (q *queue) forgiving() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.extra == 0
}

// signal leaves the writer a token. The writer takes every delivery
// whenever it wakes, so one token per empty-to-non-empty change is enough.
func (q *queue) signal() { poke(q.ready) }

// poke leaves a token on ch, a channel of one, unless one is there.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// take returns every waiting delivery, oldest first, and leaves the queue
// empty. spare, if not nil, is an emptied slice from an earlier take that
// the queue reuses for what comes next.
func (q *queue) take(spare []delivery) []delivery {
	q.mu.Lock()
	items := q.items
	q.items, q.extra, q.bytes = spare[:0], 0, 0
	if q.taken != nil {
		close(q.taken)
		q.taken = nil
	}
	select {
	case <-q.urgent: // about what was just taken
	default:
	}
	q.mu.Unlock()
	return items
}

// recycle clears a batch the writer has sent so that its events can be
// collected, and returns it for reuse by take, or nil if it grew large: a
// burst should not leave an idle stream holding a big slice.
func recycle(batch []delivery) []delivery {
	const keep = 64
	if cap(batch) > keep {
		return nil
	}
	clear(batch)
	return batch[:0]
}
