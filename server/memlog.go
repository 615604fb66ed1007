package server

import (
	"context"
	"sync"
	"time"

	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
)

// memLog is a node's own log, kept in memory: the log of a chatd run with
// --memory (a restart clears everything, as the tutorial's server did), and
// of tests. A node on it is a cluster of one like any other (see
// Cluster): every change is a command appended to the log and applied by
// the same code, in the log's order.
//
// Entries are applied by the goroutine that appends them, at once: a
// request's command is applied before its Append returns, with no
// hand-off to another goroutine. Commands appended meanwhile by others
// (another session's request, or a command appended while one is applied,
// under the hub's lock) are queued and applied by the goroutine already
// applying, in order, before it returns.
type memLog struct {
	mu       sync.Mutex // guards the fields below
	seq      uint64     // the last entry's position
	now      time.Time  // the last entry's time: the chat's clock never goes back
	queue    []Entry    // appended, not yet applied
	draining bool       // a goroutine is applying the queue
	apply    func(Entry) error
	err      error  // why apply failed, if it did: Follow returns it
	snapshot []byte // the last snapshot saved
}

var (
	_ Log        = (*memLog)(nil)
	_ commandLog = (*memLog)(nil)
)

func newMemLog() *memLog { return &memLog{} }

// Append adds an entry and, unless another goroutine is applying entries
// already (and applies it next), applies it and every entry queued after
// it before returning. Until Follow has been called, entries wait.
func (l *memLog) Append(_ context.Context, id string, data []byte) error {
	l.add(Entry{ID: id, Data: data})
	return nil
}

// appendCommand is Append for a command not encoded: the node that
// appends it is the only one that applies it, in this process.
func (l *memLog) appendCommand(id string, cmd *clusterv1.Command) {
	l.add(Entry{ID: id, cmd: cmd})
}

// add numbers e, stamps it with the chat's clock, and applies it (see
// Append).
func (l *memLog) add(e Entry) {
	l.mu.Lock()
	l.seq++
	now := time.Now()
	if now.Before(l.now) {
		now = l.now
	}
	l.now = now
	e.Seq, e.Time = l.seq, now
	l.queue = append(l.queue, e)
	l.drainLocked()
	l.mu.Unlock()
}

// appendInApply appends cmd if an entry is being applied, under the hub's
// lock, by a goroutine that applies the queue (see drainLocked): it
// applies cmd next, before its Append returns. It reports whether it did;
// if not, the caller appends cmd some other way (see Cluster.later).
func (l *memLog) appendInApply(cmd *clusterv1.Command) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.draining || l.apply == nil {
		return false
	}
	l.seq++
	l.queue = append(l.queue, Entry{Seq: l.seq, Time: l.now, ID: cmd.GetId(), cmd: cmd})
	return true
}

// drainLocked applies the queue, unless someone is at it or nobody
// follows the log yet. l.mu must be held; it is released while an entry is
// applied.
func (l *memLog) drainLocked() {
	if l.draining || l.apply == nil {
		return
	}
	l.draining = true
	for len(l.queue) > 0 && l.apply != nil && l.err == nil {
		e := l.queue[0]
		l.queue[0] = Entry{}
		l.queue = l.queue[1:]
		apply := l.apply
		l.mu.Unlock()
		err := apply(e)
		l.mu.Lock()
		if err != nil {
			l.err = err
		}
	}
	if len(l.queue) == 0 {
		l.queue = nil
	}
	l.draining = false
}

// LastSeq returns the last entry's position.
func (l *memLog) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, nil
}

// FirstSeq returns 1: the log keeps every entry while it lives (it keeps
// none, once applied; nobody reads them again).
func (l *memLog) FirstSeq(context.Context) (uint64, error) { return 1, nil }

// Follow applies the entries appended so far and then every entry as it is
// appended, until ctx ends or apply fails. A memLog has one follower, its
// node; from is where its node starts, which is the start.
func (l *memLog) Follow(ctx context.Context, _ uint64, apply func(Entry) error) error {
	l.mu.Lock()
	l.apply = apply
	l.drainLocked()
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.apply = nil
		l.mu.Unlock()
	}()
	<-ctx.Done()
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return ctx.Err()
}

// Connected reports true: the log is in the node.
func (l *memLog) Connected() bool { return true }

// LoadSnapshot returns the last snapshot saved.
func (l *memLog) LoadSnapshot(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapshot, nil
}

// SaveSnapshot keeps data as the last snapshot.
func (l *memLog) SaveSnapshot(_ context.Context, _ uint64, data []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapshot = data
	return nil
}
