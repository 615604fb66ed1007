package server

import "sync"

// queue is a session's bounded FIFO of deliveries waiting for its writer.
// It grows only as events arrive, so an idle session holds almost nothing,
// and its writer takes everything waiting in one go.
type queue struct {
	limit int
	ready chan struct{} // holds a token while deliveries may be waiting

	mu    sync.Mutex // guards items
	items []Delivery
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push adds d unless the queue is full, and reports whether it did.
func (q *queue) push(d Delivery) bool {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, d)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
	return true
}

// pushAll adds ds whatever the limit: it replays, to a resumed session,
// events that are already kept in its log, so they cost the queue only
// their slots.
func (q *queue) pushAll(ds []Delivery) {
	if len(ds) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, ds...)
	q.mu.Unlock()
	q.signal()
}

// signal leaves the writer a token. The writer takes every delivery
// whenever it wakes, so one token per empty-to-non-empty change is enough.
func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns every waiting delivery, oldest first, and leaves the queue
// empty. spare, if not nil, is an emptied slice from an earlier take that
// the queue reuses for what comes next.
func (q *queue) take(spare []Delivery) []Delivery {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

// recycle clears a batch the writer has sent so that its events can be
// collected, and returns it for reuse by take, or nil if it grew large: a
// burst should not leave an idle session holding a big slice.
func recycle(batch []Delivery) []Delivery {
	const keep = 64
	if cap(batch) > keep {
		return nil
	}
	clear(batch)
	return batch[:0]
}
