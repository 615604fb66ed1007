package server

import "sync"

// queue is a session's bounded FIFO of events waiting for its writer. It
// grows only as events arrive, so an idle session holds almost nothing, and
// its writer takes everything waiting in one go.
type queue struct {
	limit int
	ready chan struct{} // holds a token while events may be waiting

	mu    sync.Mutex // guards items
	items []*Event
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push adds ev unless the queue is full, and reports whether it did.
func (q *queue) push(ev *Event) bool {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, ev)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		// The writer takes every event whenever it wakes, so one token
		// per empty-to-non-empty change is enough.
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns every waiting event, oldest first, and leaves the queue
// empty. spare, if not nil, is an emptied slice from an earlier take that
// the queue reuses for what comes next.
func (q *queue) take(spare []*Event) []*Event {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

// recycle clears a batch the writer has sent so that its events can be
// collected, and returns it for reuse by take, or nil if it grew large: a
// burst should not leave an idle session holding a big slice.
func recycle(batch []*Event) []*Event {
	const keep = 64
	if cap(batch) > keep {
		return nil
	}
	clear(batch)
	return batch[:0]
}
