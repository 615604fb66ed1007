// Package archive keeps every message of a chat on disk, for scroll-back:
// a conversation's messages (a channel's, or two users' private ones) can
// be paged through, newest first, however many there are, at a cost that
// does not grow with them, while memory holds a few words per
// conversation.
//
// The archive is a series of segment files of records, one per message, in
// the order the chat applied them. Each record points back into the same
// conversation: to its previous message, and, like a skip list, to the
// last message whose index in the conversation is a multiple of 16, 256,
// 4,096 and 65,536. Finding where a page starts (the last message before a
// given one) takes a few dozen short reads from the newest message back;
// the page is then read by following the previous-message pointers.
//
// Old segments are removed when every message in them is older than the
// age limit, or when the archive is larger than its size limit: a
// conversation's scroll-back then ends where its pointers lead out of the
// archive.
//
// Messages are added by the chat as it applies them (Add never blocks: a
// goroutine writes them), and Flush writes and syncs what was added, as
// the chat saves a snapshot: the chat's log holds whatever came after, and
// gives it again after a crash, when Add skips what the archive has.
package archive

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
)

// Config is where and how long the archive keeps messages.
type Config struct {
	// Dir holds the segments; it is made if missing.
	Dir string
	// MaxAge is how long a message is kept (a segment goes once its last
	// message is older); 0 keeps them for ever.
	MaxAge time.Duration
	// MaxBytes bounds the archive: past it, the oldest segments go; 0 for
	// no bound.
	MaxBytes int64
	// SegmentBytes is the size past which a new segment is begun; 0 for
	// 64 MiB.
	SegmentBytes int64
	// Logger gets warnings.
	Logger *slog.Logger
	// Now is the clock for the age limit; nil for time.Now.
	Now func() time.Time
}

const (
	levels       = 5  // pointers back 1, 16, 256, 4096 and 65536 messages at most
	fanout       = 16 // the skip list's base
	headerLen    = 4 + 4 + 8 + 8 + 8 + 2 + 1
	maxRecord    = 1 << 20
	segmentExt   = ".arc"
	headsName    = "heads"
	defaultBytes = 64 << 20
	none         = int64(-1)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Archive is a chat's messages on disk. Its methods are safe for
// concurrent use.
type Archive struct {
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	convs   map[string]*conv // every conversation with a message kept
	segs    []segment        // oldest first; the last is written to
	f       *os.File         // the last segment
	end     int64            // the archive's end: where the next record goes
	last    uint64           // the number of the last message written
	queue   []message        // added, not yet written
	writing bool             // the writer has taken a batch off the queue and not written it yet
	wake    chan struct{}    // a token when queue has some
	flushed chan struct{}    // closed and replaced whenever the writer empties the queue
	err     error            // the writer's last error, until a write works
	closed  bool
	done    chan struct{} // closed when the writer has stopped
}

// conv is what the archive keeps in memory of a conversation: where its
// newest message is, its index, and the last message at each level of the
// skip list.
type conv struct {
	head  int64
	index uint64
	at    [levels]int64
}

type segment struct {
	start int64 // the archive position of its first byte
	path  string
	last  time.Time // its last message's time
	size  int64
}

type message struct {
	conv   string
	number uint64
	time   time.Time
	wire   []byte
}

// Open opens the archive in cfg.Dir, checking its last segment and taking
// the conversations' heads from what Flush last saved and the records
// written after it.
func Open(cfg Config) (*Archive, error) {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = defaultBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the archive's directory: %w", err)
	}
	a := &Archive{cfg: cfg, logger: logger, convs: make(map[string]*conv), wake: make(chan struct{}, 1), flushed: make(chan struct{}), done: make(chan struct{})}
	if err := a.load(); err != nil {
		return nil, err
	}
	go a.writeLoop()
	return a, nil
}

func (a *Archive) load() error {
	entries, err := os.ReadDir(a.cfg.Dir)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", a.cfg.Dir, err)
	}
	for _, d := range entries {
		name := d.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		start, err := strconv.ParseInt(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: not a segment of chatd's archive (move it out of the directory)", filepath.Join(a.cfg.Dir, name))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		a.segs = append(a.segs, segment{start: start, path: filepath.Join(a.cfg.Dir, name), last: info.ModTime(), size: info.Size()})
	}
	slices.SortFunc(a.segs, func(x, y segment) int { return cmpInt(x.start, y.start) })
	for i := 1; i < len(a.segs); i++ {
		if want := a.segs[i-1].start + a.segs[i-1].size; a.segs[i].start != want {
			// A hole would make pointers land in the middle of records.
			return fmt.Errorf("%s: the archive skips from byte %d to %d: a segment is missing or was cut short", a.segs[i].path, want, a.segs[i].start)
		}
	}
	from := int64(0)
	if len(a.segs) > 0 {
		from = a.segs[0].start
	}
	if h, err := a.readHeads(); err != nil {
		a.logger.Warn("the archive's heads file is unreadable: reading the whole archive instead", "err", err)
	} else if h != nil && len(a.segs) > 0 && h.end >= a.segs[0].start && h.end <= a.segs[len(a.segs)-1].start+a.segs[len(a.segs)-1].size {
		a.convs, a.last, from = h.convs, h.last, h.end
	}
	a.end = from
	if err := a.scan(from); err != nil {
		return err
	}
	if len(a.segs) == 0 {
		return a.rotateLocked()
	}
	s := a.segs[len(a.segs)-1]
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", s.path, err)
	}
	a.f = f
	return nil
}

// scan reads the records from position from to the end, updating the
// conversations; a record torn at the very end (a crash mid-write) is cut
// off.
func (a *Archive) scan(from int64) error {
	for i := range a.segs {
		s := &a.segs[i]
		if s.start+s.size <= from {
			continue
		}
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", s.path, err)
		}
		off := max(from-s.start, 0)
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return err
		}
		r := bufio.NewReaderSize(f, 256<<10)
		for off < s.size {
			rec, n, err := readRecord(r, s.start+off)
			if err != nil {
				if i == len(a.segs)-1 {
					a.logger.Warn("the archive's last record was cut short (chatd stopped while writing it): cutting it off; the chat's log has it and gives it again", "file", s.path, "offset", off)
					if err := f.Truncate(off); err != nil {
						f.Close()
						return fmt.Errorf("cannot cut the torn end off %s: %w", s.path, err)
					}
					s.size = off
					break
				}
				f.Close()
				return fmt.Errorf("%s is damaged at byte %d (%v): restore the data directory from a backup, or move the archive's directory away to start without its scroll-back", s.path, off, err)
			}
			a.track(rec.conv, s.start+off, rec.index)
			a.last = max(a.last, rec.number)
			s.last = rec.time
			off += n
		}
		f.Close()
		a.end = s.start + s.size
	}
	return nil
}

// track records that the message at position pos, index index of conv,
// is its newest.
func (a *Archive) track(key string, pos int64, index uint64) {
	c := a.convs[key]
	if c == nil {
		c = &conv{head: none, at: [levels]int64{none, none, none, none, none}}
		a.convs[key] = c
	}
	c.head, c.index = pos, index
	for k := range levelOf(index) + 1 {
		c.at[k] = pos
	}
}

// levelOf is the skip list level of the message with index i: how many of
// its lowest base-16 digits are zero.
func levelOf(i uint64) int {
	l := 0
	for l < levels-1 && i%fanout == 0 && i > 0 {
		i /= fanout
		l++
	}
	return l
}

// record is a message as the archive holds it.
type record struct {
	number uint64
	index  uint64
	time   time.Time
	conv   string
	ptrs   []int64 // back to the previous message, then the last at each higher level
	wire   []byte
}

func appendRecord(b []byte, m message, index uint64, ptrs []int64) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.conv)+8*len(ptrs)+len(m.wire)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, m.number)
	b = binary.LittleEndian.AppendUint64(b, index)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.time.UnixNano()))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.conv)))
	b = append(b, byte(len(ptrs)))
	b = append(b, m.conv...)
	for _, p := range ptrs {
		b = binary.LittleEndian.AppendUint64(b, uint64(p))
	}
	b = append(b, m.wire...)
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], crcTable))
	return b
}

// readRecord reads a record at position pos from r, returning it and its
// size.
func readRecord(r io.Reader, pos int64) (record, int64, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return record{}, 0, fmt.Errorf("a record's header at %d cut short", pos)
	}
	size := binary.LittleEndian.Uint32(hdr[0:4])
	if size > maxRecord {
		return record{}, 0, fmt.Errorf("a record of %d bytes at %d", size, pos)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return record{}, 0, fmt.Errorf("a record at %d cut short", pos)
	}
	if crc32.Update(crc32.Checksum(hdr[8:], crcTable), crcTable, body) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return record{}, 0, fmt.Errorf("a record at %d whose checksum does not match", pos)
	}
	convLen, nptr := int(binary.LittleEndian.Uint16(hdr[32:34])), int(hdr[34])
	if convLen+8*nptr > len(body) {
		return record{}, 0, fmt.Errorf("a record at %d that does not add up", pos)
	}
	rec := record{
		number: binary.LittleEndian.Uint64(hdr[8:16]),
		index:  binary.LittleEndian.Uint64(hdr[16:24]),
		time:   time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[24:32]))).UTC(),
		conv:   string(body[:convLen]),
	}
	p := body[convLen:]
	for range nptr {
		rec.ptrs = append(rec.ptrs, int64(binary.LittleEndian.Uint64(p)))
		p = p[8:]
	}
	rec.wire = p
	return rec, int64(headerLen + len(body)), nil
}

// Add queues a message of conversation conv to be written: number is its
// place among all the chat's messages (they are added in that order),
// wire what a page returns for it. It never blocks; a message the archive
// has already (the chat's log giving it again after a crash) is skipped.
func (a *Archive) Add(conv string, number uint64, t time.Time, wire []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || number <= a.last && a.last != 0 || len(a.queue) > 0 && number <= a.queue[len(a.queue)-1].number {
		return
	}
	a.queue = append(a.queue, message{conv: conv, number: number, time: t, wire: wire})
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what Add queues, in batches.
func (a *Archive) writeLoop() {
	defer close(a.done)
	var buf []byte
	for range a.wake {
		for {
			a.mu.Lock()
			batch := a.queue
			a.queue = nil
			a.writing = len(batch) > 0
			if len(batch) == 0 {
				close(a.flushed)
				a.flushed = make(chan struct{})
				closed := a.closed
				a.mu.Unlock()
				if closed {
					return
				}
				break
			}
			// Pointers are worked out under the lock: pages read the
			// conversations as the writer moves them on.
			buf = buf[:0]
			f, end, segStart := a.f, a.end, a.segStart()
			type moved struct {
				key        string
				pos, index uint64
			}
			var heads []moved
			pos := end
			shadow := map[string]*conv{}
			room := a.cfg.SegmentBytes - a.segs[len(a.segs)-1].size
			for i, m := range batch {
				if len(buf) > 0 && int64(len(buf)) >= room {
					// The rest goes in the next segment: segments stay
					// near their size, so that the limits drop little.
					a.queue = append(batch[i:], a.queue...)
					batch = batch[:i]
					break
				}
				c := shadow[m.conv]
				if c == nil {
					if old := a.convs[m.conv]; old != nil {
						cp := *old
						c = &cp
					} else {
						c = &conv{head: none, at: [levels]int64{none, none, none, none, none}}
					}
					shadow[m.conv] = c
				}
				index := c.index + 1
				lvl := levelOf(index)
				ptrs := make([]int64, lvl+1)
				ptrs[0] = c.head
				for k := 1; k <= lvl; k++ {
					ptrs[k] = c.at[k]
				}
				before := len(buf)
				buf = appendRecord(buf, m, index, ptrs)
				c.head, c.index = pos, index
				for k := range lvl + 1 {
					c.at[k] = pos
				}
				heads = append(heads, moved{key: m.conv, pos: uint64(pos), index: index})
				pos += int64(len(buf) - before)
			}
			a.mu.Unlock()
			_, err := f.WriteAt(buf, end-segStart)
			a.mu.Lock()
			a.writing = false
			if err != nil {
				// Cut back, keep the batch for the next try: the chat's
				// log has the messages until the next snapshot, which
				// fails (see Flush) while this does.
				_ = f.Truncate(end - segStart)
				if a.err == nil {
					a.logger.Warn("could not write to the archive: scroll-back holds the messages once it can", "file", f.Name(), "err", err)
				}
				a.err = err
				if a.closed {
					a.mu.Unlock()
					return
				}
				a.queue = append(batch, a.queue...)
				a.mu.Unlock()
				select {
				case <-time.After(time.Second):
				case <-a.wake: // Close, or more to write
				}
				continue
			}
			a.err = nil
			for _, h := range heads {
				a.track(h.key, int64(h.pos), h.index)
			}
			a.end = pos
			a.last = batch[len(batch)-1].number
			s := &a.segs[len(a.segs)-1]
			s.size += int64(len(buf))
			s.last = batch[len(batch)-1].time
			if s.size >= a.cfg.SegmentBytes {
				if err := a.rotateLocked(); err != nil {
					a.logger.Warn("could not begin a new segment of the archive; the last one grows on", "err", err)
				}
			}
			a.mu.Unlock()
		}
	}
}

// segStart is where the last segment starts. a.mu must be held.
func (a *Archive) segStart() int64 { return a.segs[len(a.segs)-1].start }

// rotateLocked begins a new segment at the archive's end, and removes the
// segments past the limits. a.mu must be held.
func (a *Archive) rotateLocked() error {
	path := filepath.Join(a.cfg.Dir, fmt.Sprintf("%020d%s", a.end, segmentExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot begin a segment of the archive: %w", err)
	}
	if a.f != nil {
		_ = a.f.Sync()
		a.f.Close()
	}
	if n := len(a.segs); n > 0 && a.segs[n-1].size == 0 {
		a.segs = a.segs[:n-1]
	}
	a.segs = append(a.segs, segment{start: a.end, path: path})
	a.f = f
	a.pruneLocked()
	return nil
}

// pruneLocked removes the oldest segments while their messages are all
// older than MaxAge, or the archive is larger than MaxBytes. The segment
// being written stays. a.mu must be held.
func (a *Archive) pruneLocked() {
	var total int64
	for _, s := range a.segs {
		total += s.size
	}
	now := a.cfg.Now()
	for len(a.segs) > 1 {
		s := a.segs[0]
		old := a.cfg.MaxAge > 0 && now.Sub(s.last) > a.cfg.MaxAge
		big := a.cfg.MaxBytes > 0 && total > a.cfg.MaxBytes
		if !old && !big {
			return
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.logger.Warn("could not remove an old segment of the archive", "file", s.path, "err", err)
			return
		}
		total -= s.size
		a.segs = a.segs[1:]
	}
}

// Prune removes what is past the limits now: the chat calls it now and
// then, so that an archive that takes no new messages still ages.
func (a *Archive) Prune() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked()
}

// Flush waits until every message added so far is written, syncs it, and
// saves the conversations' heads, so that the next Open need not read the
// archive. It fails if the archive cannot be written: the chat must then
// keep the log the messages are in.
func (a *Archive) Flush(ctx context.Context) error {
	for {
		a.mu.Lock()
		if len(a.queue) == 0 && !a.writing && a.err == nil {
			h := a.headsLocked()
			f := a.f
			a.mu.Unlock()
			if err := f.Sync(); err != nil {
				return fmt.Errorf("syncing the archive: %w", err)
			}
			return a.writeHeads(h)
		}
		if a.err != nil && len(a.queue) > 0 {
			err := a.err
			a.mu.Unlock()
			return fmt.Errorf("the archive cannot be written: %w", err)
		}
		flushed := a.flushed
		a.mu.Unlock()
		select {
		case <-flushed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Page returns up to limit messages of conversation conv that came before
// message number before (0: the newest), oldest first, and whether older
// ones remain.
func (a *Archive) Page(conv string, before uint64, limit int) ([][]byte, bool, error) {
	// What was added a moment ago is in the page too: wait (briefly) for
	// the writer to have it.
	a.mu.Lock()
	for deadline := time.Now().Add(time.Second); (len(a.queue) > 0 || a.writing) && a.err == nil && time.Now().Before(deadline); {
		flushed := a.flushed
		a.mu.Unlock()
		select {
		case <-flushed:
		case <-time.After(time.Until(deadline)):
		}
		a.mu.Lock()
	}
	c := a.convs[conv]
	var head int64 = none
	if c != nil {
		head = c.head
	}
	first := int64(0)
	if len(a.segs) > 0 {
		first = a.segs[0].start
	}
	segs := slices.Clone(a.segs)
	a.mu.Unlock()
	r := &reader{segs: segs, first: first}
	defer r.close()
	pos, err := r.seek(head, before)
	if err != nil {
		return nil, false, err
	}
	var out [][]byte
	for pos != none && len(out) < limit {
		rec, err := r.read(pos)
		if err != nil {
			return nil, false, err
		}
		if rec == nil {
			break // gone with an old segment
		}
		out = append(out, rec.wire)
		pos = rec.ptrs[0]
	}
	more := false
	if pos != none {
		if rec, err := r.read(pos); err == nil && rec != nil {
			more = true
		}
	}
	slices.Reverse(out)
	return out, more, nil
}

// reader reads records from the segments, keeping their files open for the
// length of a page.
type reader struct {
	segs  []segment
	first int64
	files map[int]*os.File
}

func (r *reader) close() {
	for _, f := range r.files {
		f.Close()
	}
}

// read returns the record at pos, or nil if it is in a segment removed.
func (r *reader) read(pos int64) (*record, error) {
	if pos < r.first {
		return nil, nil
	}
	i, ok := slices.BinarySearchFunc(r.segs, pos, func(s segment, p int64) int { return cmpInt(s.start, p) })
	if !ok {
		i--
	}
	if i < 0 || i >= len(r.segs) {
		return nil, nil
	}
	if r.files == nil {
		r.files = make(map[int]*os.File)
	}
	f := r.files[i]
	if f == nil {
		var err error
		if f, err = os.Open(r.segs[i].path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil // removed meanwhile
			}
			return nil, err
		}
		r.files[i] = f
	}
	rec, _, err := readRecord(bufio.NewReaderSize(io.NewSectionReader(f, pos-r.segs[i].start, maxRecord+headerLen), 4<<10), pos)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.segs[i].path, err)
	}
	return &rec, nil
}

// seek returns the position of the last message before number before,
// from the conversation's newest at head: down the skip list, a few reads
// at each level.
func (r *reader) seek(head int64, before uint64) (int64, error) {
	if head == none || before == 0 {
		return head, nil
	}
	cur := head
	for cur != none {
		rec, err := r.read(cur)
		if err != nil || rec == nil {
			return none, err
		}
		if rec.number < before {
			return cur, nil
		}
		// Jump back as far as the pointers go while still at or after
		// before; at worst, one step.
		next := rec.ptrs[0]
		for k := len(rec.ptrs) - 1; k >= 1; k-- {
			p, err := r.read(rec.ptrs[k])
			if err != nil {
				return none, err
			}
			if p != nil && p.number >= before {
				next = rec.ptrs[k]
				break
			}
		}
		cur = next
	}
	return none, nil
}

// Close writes what is queued and stops the writer.
func (a *Archive) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.Flush(ctx)
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		err = errors.Join(err, a.f.Close())
		a.f = nil
	}
	return err
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// heads is what Flush saves of the conversations, so that Open need not
// read the whole archive.
type heads struct {
	end   int64
	last  uint64
	convs map[string]*conv
}

const headsMagic = "chatd-archive-heads 1\n"

// headsLocked copies the conversations' heads. a.mu must be held.
func (a *Archive) headsLocked() *heads {
	h := &heads{end: a.end, last: a.last, convs: make(map[string]*conv, len(a.convs))}
	for k, c := range a.convs {
		cp := *c
		h.convs[k] = &cp
	}
	return h
}

// writeHeads saves h, replacing the last heads saved.
func (a *Archive) writeHeads(h *heads) error {
	b := []byte(headsMagic)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.end))
	b = binary.LittleEndian.AppendUint64(b, h.last)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.convs)))
	for k, c := range h.convs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.head))
		b = binary.LittleEndian.AppendUint64(b, c.index)
		for _, p := range c.at {
			b = binary.LittleEndian.AppendUint64(b, uint64(p))
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	path := filepath.Join(a.cfg.Dir, headsName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("saving the archive's heads: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("saving the archive's heads: %w", err)
	}
	return nil
}

// readHeads reads the heads Flush saved last; nil if there are none.
func (a *Archive) readHeads() (*heads, error) {
	b, err := os.ReadFile(filepath.Join(a.cfg.Dir, headsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) < len(headsMagic)+24 || !strings.HasPrefix(string(b), headsMagic) {
		return nil, errors.New("not a heads file")
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(b[:len(b)-4], crcTable) != sum {
		return nil, errors.New("its checksum does not match")
	}
	p := b[len(headsMagic) : len(b)-4]
	h := &heads{end: int64(binary.LittleEndian.Uint64(p)), last: binary.LittleEndian.Uint64(p[8:]), convs: map[string]*conv{}}
	n := binary.LittleEndian.Uint32(p[16:])
	p = p[20:]
	for range n {
		if len(p) < 2 {
			return nil, errors.New("cut short")
		}
		kl := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+kl+8*(2+levels) {
			return nil, errors.New("cut short")
		}
		k := string(p[2 : 2+kl])
		p = p[2+kl:]
		c := &conv{head: int64(binary.LittleEndian.Uint64(p)), index: binary.LittleEndian.Uint64(p[8:])}
		p = p[16:]
		for i := range c.at {
			c.at[i] = int64(binary.LittleEndian.Uint64(p))
			p = p[8:]
		}
		h.convs[k] = c
	}
	return h, nil
}
