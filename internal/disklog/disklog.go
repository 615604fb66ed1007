// Package disklog keeps a chatd's own log on disk: the log of a chatd that
// is a chat of its own (not a node of a cluster), in its data directory, so
// that a restart brings the chat back. It implements server.Log: every
// change to the chat is a command written here before it is applied, and a
// node restarts from its last snapshot and the commands written since.
//
// Layout of the data directory:
//
//	LOCK                    held (flock) while a chatd uses the directory
//	log/<first seq>.wal     segments of the log, oldest first
//	snapshot                the state as of some entry (see server.Log)
//
// A record of a segment is a 26-byte header (payload length, CRC-32C of
// the rest, sequence number, time, id length), the id and the command. A
// write is acknowledged once the operating system has it: a crash of chatd
// (SIGKILL, a panic) loses nothing acknowledged; losing the machine's power
// loses what was written since the last sync (every Config.SyncEvery; 0
// syncs each write before acknowledging it). Commands that arrive while one
// write is under way go out together in the next (group commit), so a sync
// per write costs one sync per group, not per command.
//
// Damage is never skipped silently. A record cut short at the very end of
// the last segment is what a crash in the middle of a write leaves: it is
// cut off, with a warning. Anything else that does not check out (a bad
// CRC, a gap in the numbering, a snapshot that does not decode) makes Open
// fail with an error naming the file and the offset.
package disklog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatd/chatd/server"
)

// Config is where and how the log is kept.
type Config struct {
	// Dir is the data directory; it is made if missing.
	Dir string
	// SyncEvery is how often what was written is synced to the disk; 0
	// syncs every write before it is acknowledged.
	SyncEvery time.Duration
	// SegmentBytes is the size past which a new segment is begun; 0 for
	// 64 MiB. Segments wholly before the last snapshot are removed.
	SegmentBytes int64
	// Logger gets warnings (a torn write cut off, a failed sync).
	Logger *slog.Logger
}

const (
	headerLen    = 26
	maxRecord    = 16 << 20 // far above any command: a length past it is damage
	segmentExt   = ".wal"
	defaultBytes = 64 << 20
	snapshotName = "snapshot"
	lockName     = "LOCK"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Log is a chatd's own log on disk. Its methods are safe for concurrent
// use.
type Log struct {
	cfg    Config
	logger *slog.Logger
	dir    string // cfg.Dir/log
	lock   *os.File

	mu       sync.Mutex // guards the fields below
	segs     []segment  // oldest first; the last is written to
	f        *os.File   // the last segment, open for appending
	size     int64      // what of f is written and good
	next     uint64     // the next entry's sequence number
	now      time.Time  // the last entry's time: the chat's clock never goes back
	queue    []*pending // waiting to be written
	draining bool       // a goroutine is writing and applying the queue
	apply    func(server.Entry) error
	applyErr error  // why apply failed, if it did
	dirty    bool   // written since the last sync
	snapSeq  uint64 // the entry the snapshot is as of; 0 if none
	first    uint64 // the first entry kept
	closed   bool   // Close was called
	stop     chan struct{}
	stopped  chan struct{}

	write func(f *os.File, b []byte, off int64) error // writeAll; tests make it fail
}

type segment struct {
	first uint64 // the sequence number its name says its first entry has
	path  string
}

// pending is an entry waiting to be written, and its caller.
type pending struct {
	e    server.Entry
	err  error
	done chan struct{} // closed once written (and applied) or refused
}

// Open locks the data directory, checks what it holds and opens the log
// for appending. It fails if another chatd holds the directory, or if
// anything in it is damaged (the error names the file).
func Open(cfg Config) (*Log, error) {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = defaultBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "log"), 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the data directory: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, logger: logger, dir: filepath.Join(cfg.Dir, "log"), lock: lock, next: 1, first: 1, write: writeAll}
	if err := l.load(); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	if cfg.SyncEvery > 0 {
		l.stop, l.stopped = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	return l, nil
}

// load reads the snapshot's position and checks every segment, cuts off a
// torn last record, and opens the last segment for appending.
func (l *Log) load() error {
	snap, err := l.readSnapshot()
	if err != nil {
		return err
	}
	if snap != nil {
		l.snapSeq = snap.seq
		l.first, l.next = snap.seq+1, snap.seq+1
	}
	names, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", l.dir, err)
	}
	for _, d := range names {
		name := d.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: not a segment of chatd's log (move it out of the directory)", filepath.Join(l.dir, name))
		}
		l.segs = append(l.segs, segment{first: first, path: filepath.Join(l.dir, name)})
	}
	slices.SortFunc(l.segs, func(a, b segment) int { return cmpUint(a.first, b.first) })
	// The segments must follow one another with no gap, from entry 1 or
	// from at most the entry after the snapshot's.
	if len(l.segs) > 0 {
		first := l.segs[0]
		switch {
		case snap == nil && first.first != 1:
			return fmt.Errorf("%s: the log starts at entry %d, and there is no snapshot of what came before (was %s removed?)",
				first.path, first.first, filepath.Join(l.cfg.Dir, snapshotName))
		case first.first > l.snapSeq+1:
			return fmt.Errorf("%s: the log starts at entry %d, but the snapshot holds the state only as of entry %d: a segment is missing",
				first.path, first.first, l.snapSeq)
		}
		l.first = first.first
	}
	end := uint64(0) // the entry after the last segment's last
	for i, s := range l.segs {
		if i > 0 && s.first != end {
			return fmt.Errorf("%s: the log skips from entry %d to %d: a segment is missing", s.path, end-1, s.first)
		}
		size, n, err := l.check(s, i == len(l.segs)-1)
		if err != nil {
			return err
		}
		end = s.first + n
		l.size = size
	}
	if len(l.segs) > 0 && end > l.next {
		l.next = end
	}
	if len(l.segs) > 0 && end < l.next {
		// The snapshot is as of a later entry than the log holds (written
		// just before a crash, with the log's tail never synced): the log
		// goes on from the snapshot, in a new segment.
		l.logger.Warn("the snapshot is ahead of the log (the log's tail was lost in a crash before it was synced): going on from the snapshot",
			"snapshot_seq", l.snapSeq, "log_end", end-1)
		return l.rotateLocked()
	}
	if len(l.segs) == 0 || l.size >= l.cfg.SegmentBytes {
		return l.rotateLocked()
	}
	s := l.segs[len(l.segs)-1]
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s for writing: %w", s.path, err)
	}
	if _, err := f.Seek(l.size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", s.path, err)
	}
	l.f = f
	return nil
}

// check reads every record of s, checking its CRC and its numbering, and
// returns where its good records end and how many there are. In the last
// segment, a record cut short or garbled at the very end is a write a
// crash interrupted: it is cut off.
func (l *Log) check(s segment, last bool) (end int64, n uint64, err error) {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot open %s: %w", s.path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", s.path, err)
	}
	r := newReader(bufio.NewReaderSize(f, 256<<10), s.path)
	want := s.first
	for {
		e, off, err := r.next()
		if err == io.EOF {
			return r.off, n, nil
		}
		if err != nil {
			var de *damageError
			if last && errors.As(err, &de) && de.tail(info.Size()) {
				l.logger.Warn("the log's last record was cut short (chatd stopped in the middle of writing it): cutting it off; it was never acknowledged",
					"file", s.path, "offset", off, "bytes_cut", info.Size()-off)
				if err := f.Truncate(off); err != nil {
					return 0, 0, fmt.Errorf("cannot cut the torn end off %s: %w", s.path, err)
				}
				return off, n, nil
			}
			return 0, 0, err
		}
		if e.Seq != want {
			return 0, 0, &damageError{path: s.path, off: off, what: fmt.Sprintf("entry %d where entry %d should be", e.Seq, want)}
		}
		want++
		n++
		if e.Time.After(l.now) {
			l.now = e.Time
		}
	}
}

// damageError says which file is damaged, and where.
type damageError struct {
	path string
	off  int64
	what string
	end  int64 // where the damaged record would end; 0 if unknown
}

func (e *damageError) Error() string {
	return fmt.Sprintf("%s is damaged at byte %d (%s): chatd will not start on a damaged log, which could lose or mix up the chat. Restore the data directory from a backup, or move %s out of it to start without it (losing what it holds)",
		e.path, e.off, e.what, e.path)
}

// tail reports whether the damage is a record cut short by the end of a
// file of size bytes: a write that did not finish.
func (e *damageError) tail(size int64) bool { return e.end == 0 || e.end >= size }

// reader reads a segment's records in order.
type reader struct {
	r    io.Reader
	path string
	off  int64
	hdr  [headerLen]byte
}

func newReader(r io.Reader, path string) *reader {
	return &reader{r: r, path: path}
}

// next reads the next record: io.EOF after the last whole one, or a
// *damageError.
func (r *reader) next() (server.Entry, int64, error) {
	off := r.off
	n, err := io.ReadFull(r.r, r.hdr[:])
	if err == io.EOF {
		return server.Entry{}, off, io.EOF
	}
	if err != nil {
		return server.Entry{}, off, &damageError{path: r.path, off: off, what: fmt.Sprintf("a record's header cut short after %d bytes", n)}
	}
	size := binary.LittleEndian.Uint32(r.hdr[0:4])
	sum := binary.LittleEndian.Uint32(r.hdr[4:8])
	idLen := int(binary.LittleEndian.Uint16(r.hdr[24:26]))
	if size > maxRecord {
		return server.Entry{}, off, &damageError{path: r.path, off: off, what: fmt.Sprintf("a record of %d bytes, more than any command", size)}
	}
	body := make([]byte, idLen+int(size))
	end := off + headerLen + int64(len(body))
	if _, err := io.ReadFull(r.r, body); err != nil {
		return server.Entry{}, off, &damageError{path: r.path, off: off, what: "a record cut short", end: end}
	}
	crc := crc32.Update(crc32.Checksum(r.hdr[8:], crcTable), crcTable, body)
	if crc != sum {
		return server.Entry{}, off, &damageError{path: r.path, off: off, what: "a record whose checksum does not match", end: end}
	}
	r.off = end
	return server.Entry{
		Seq:  binary.LittleEndian.Uint64(r.hdr[8:16]),
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(r.hdr[16:24]))).UTC(),
		ID:   string(body[:idLen]),
		Data: body[idLen:],
	}, off, nil
}

// appendRecord appends e's record to b.
func appendRecord(b []byte, e server.Entry) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Data)))
	b = binary.LittleEndian.AppendUint32(b, 0) // the CRC, below
	b = binary.LittleEndian.AppendUint64(b, e.Seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.ID)))
	b = append(b, e.ID...)
	b = append(b, e.Data...)
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], crcTable))
	return b
}

// Append writes an entry and, once a follower is there (see Follow),
// applies it, before it returns. Entries appended while another goroutine
// writes go out in its next write, all at once. An error wrapping
// server.ErrNotAppended means the entry was not written (a full disk, say):
// nothing of it is in the log.
func (l *Log) Append(ctx context.Context, id string, data []byte) error {
	if len(id) > 1<<16-1 {
		return fmt.Errorf("%w: an id of %d bytes", server.ErrNotAppended, len(id))
	}
	p := &pending{e: server.Entry{ID: id, Data: data}, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%w: the log is closed", server.ErrNotAppended)
	}
	l.queue = append(l.queue, p)
	l.drainLocked()
	l.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err() // it may be written yet
	}
}

// drainLocked writes and applies the queue, unless another goroutine is at
// it, or nobody follows the log yet (Follow does then). l.mu must be held;
// it is released while writing and applying.
func (l *Log) drainLocked() {
	if l.draining || l.apply == nil {
		return
	}
	l.draining = true
	defer func() { l.draining = false }()
	var buf []byte
	for len(l.queue) > 0 && l.apply != nil && l.applyErr == nil {
		batch := l.queue
		l.queue = nil
		now := time.Now().UTC()
		if now.Before(l.now) {
			now = l.now
		}
		buf = buf[:0]
		for i, p := range batch {
			p.e.Seq, p.e.Time = l.next+uint64(i), now
			buf = appendRecord(buf, p.e)
		}
		f, size, write := l.f, l.size, l.write
		l.mu.Unlock()
		err := write(f, buf, size)
		if err == nil && l.cfg.SyncEvery == 0 {
			err = f.Sync()
		}
		l.mu.Lock()
		if err != nil {
			// Nothing of the batch counts: cut what was written of it
			// off, so that the next write starts on a record boundary.
			if terr := f.Truncate(size); terr != nil {
				l.logger.Error("could not cut a failed write off the log: appends are refused until chatd is restarted", "file", f.Name(), "err", terr)
				l.closed = true
			}
			l.logger.Warn("could not write to the log: refusing requests until it can", "file", f.Name(), "err", err)
			for _, p := range batch {
				p.err = fmt.Errorf("%w: cannot write to the data directory: %s", server.ErrNotAppended, reason(err))
				close(p.done)
			}
			continue
		}
		l.now, l.next, l.size, l.dirty = now, l.next+uint64(len(batch)), size+int64(len(buf)), true
		// The follower may have stopped while the batch was written: the
		// batch is in the log all the same, and the next follower's
		// replay applies it.
		apply := l.apply
		l.mu.Unlock()
		for _, p := range batch {
			if apply != nil {
				if err := apply(p.e); err != nil {
					l.mu.Lock()
					l.applyErr = err
					l.mu.Unlock()
				}
			}
			close(p.done)
		}
		l.mu.Lock()
		if l.size >= l.cfg.SegmentBytes {
			if err := l.rotateLocked(); err != nil {
				l.logger.Warn("could not begin a new segment of the log; the last one grows on", "err", err)
			}
		}
	}
}

// writeAll writes b at offset off of f.
func writeAll(f *os.File, b []byte, off int64) error {
	_, err := f.WriteAt(b, off)
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return nil
}

// rotateLocked begins a new segment, for the next entry. l.mu must be
// held.
func (l *Log) rotateLocked() error {
	path := filepath.Join(l.dir, fmt.Sprintf("%020d%s", l.next, segmentExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot begin a segment of the log: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	if l.f != nil {
		if err := l.f.Sync(); err != nil {
			l.logger.Warn("could not sync the log", "file", l.f.Name(), "err", err)
		}
		l.f.Close()
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].first == l.next {
		l.segs = l.segs[:n-1] // an empty one, begun again
	}
	l.segs = append(l.segs, segment{first: l.next, path: path})
	l.f, l.size, l.dirty = f, 0, false
	return nil
}

// syncLoop syncs what was written, every SyncEvery.
func (l *Log) syncLoop() {
	defer close(l.stopped)
	t := time.NewTicker(l.cfg.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		f, dirty := l.f, l.dirty
		l.dirty = false
		l.mu.Unlock()
		if dirty && f != nil {
			if err := f.Sync(); err != nil && !errors.Is(err, fs.ErrClosed) {
				l.logger.Warn("could not sync the log", "file", f.Name(), "err", err)
			}
		}
	}
}

// LastSeq returns the last entry's position, 0 if there is none.
func (l *Log) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1, nil
}

// FirstSeq returns the first entry the log keeps.
func (l *Log) FirstSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first, nil
}

// Follow applies the entries from position from on, read from the disk,
// then every entry as it is appended, until ctx ends or apply fails. A Log
// has one follower, its node.
func (l *Log) Follow(ctx context.Context, from uint64, apply func(server.Entry) error) error {
	if err := l.replay(from, apply); err != nil {
		return err
	}
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
	err := l.applyErr
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return ctx.Err()
}

// replay applies the entries on disk from position from on. Nothing is
// appended meanwhile: appends wait in the queue until Follow takes over.
func (l *Log) replay(from uint64, apply func(server.Entry) error) error {
	l.mu.Lock()
	segs := slices.Clone(l.segs)
	end := l.next
	l.mu.Unlock()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= from {
			continue // wholly before from
		}
		if err := l.replaySegment(s, from, end, apply); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegment(s segment, from, end uint64, apply func(server.Entry) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", s.path, err)
	}
	defer f.Close()
	r := newReader(bufio.NewReaderSize(f, 256<<10), s.path)
	for {
		e, _, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if e.Seq >= end {
			return nil
		}
		if e.Seq < from {
			continue
		}
		if err := apply(e); err != nil {
			return err
		}
	}
}

// Connected reports true: the log is on this machine.
func (l *Log) Connected() bool { return true }

// snapshotFile is the snapshot as stored: "chatd-snapshot 1\n", the entry
// it is as of, the length and CRC-32C of the state, and the state.
type snapshotFile struct {
	seq  uint64
	data []byte
}

const snapshotMagic = "chatd-snapshot 1\n"

func (l *Log) readSnapshot() (*snapshotFile, error) {
	path := filepath.Join(l.cfg.Dir, snapshotName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	bad := func(what string) error {
		return fmt.Errorf("%s is damaged (%s): chatd will not start without the state it holds. Restore the data directory from a backup", path, what)
	}
	if !strings.HasPrefix(string(b), snapshotMagic) {
		return nil, bad("it does not begin as a snapshot of chatd's does")
	}
	b = b[len(snapshotMagic):]
	if len(b) < 16 {
		return nil, bad("it is cut short")
	}
	seq := binary.LittleEndian.Uint64(b[0:8])
	n := binary.LittleEndian.Uint32(b[8:12])
	sum := binary.LittleEndian.Uint32(b[12:16])
	data := b[16:]
	if uint32(len(data)) != n {
		return nil, bad(fmt.Sprintf("%d bytes of state where there should be %d", len(data), n))
	}
	if crc32.Checksum(data, crcTable) != sum {
		return nil, bad("its checksum does not match")
	}
	return &snapshotFile{seq: seq, data: data}, nil
}

// LoadSnapshot returns the last snapshot saved, or nil if none was.
func (l *Log) LoadSnapshot(context.Context) ([]byte, error) {
	s, err := l.readSnapshot()
	if s == nil || err != nil {
		return nil, err
	}
	return s.data, nil
}

// SaveSnapshot replaces the snapshot with data, the state as of entry seq,
// synced to the disk before it replaces the last one. It then begins a new
// segment and removes the segments wholly before seq.
func (l *Log) SaveSnapshot(_ context.Context, seq uint64, data []byte) error {
	b := make([]byte, 0, len(snapshotMagic)+16+len(data))
	b = append(b, snapshotMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(data, crcTable))
	b = append(b, data...)
	path := filepath.Join(l.cfg.Dir, snapshotName)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot save a snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot save a snapshot: %w", err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snapSeq = seq
	if l.size > 0 && !l.closed {
		if err := l.rotateLocked(); err != nil {
			return err
		}
	}
	// A segment is wholly before seq if the next one begins at seq+1 or
	// before; the last one is written to, and stays.
	for len(l.segs) > 1 && l.segs[1].first <= seq+1 {
		if err := os.Remove(l.segs[0].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove a segment of the log the snapshot holds: %w", err)
		}
		l.segs = l.segs[1:]
	}
	l.first = l.segs[0].first
	return nil
}

// Close syncs and closes the log and lets the data directory go.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed && l.f == nil {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	f := l.f
	l.f = nil
	queue := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, p := range queue {
		p.err = fmt.Errorf("%w: the log is closed", server.ErrNotAppended)
		close(p.done)
	}
	if l.stop != nil {
		close(l.stop)
		<-l.stopped
	}
	var err error
	if f != nil {
		err = errors.Join(f.Sync(), f.Close())
	}
	return errors.Join(err, unlockDir(l.lock))
}

// reason is what err says without the file's path: what a client may be
// told ("no space left on device").
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
