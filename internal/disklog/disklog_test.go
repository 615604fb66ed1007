package disklog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/disklog"
	"github.com/chatd/chatd/server"
)

// follower follows a log in the background and records what it applies.
type follower struct {
	mu      sync.Mutex
	entries []server.Entry
	cancel  context.CancelFunc
	done    chan error
}

func follow(t *testing.T, l *disklog.Log, from uint64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, done: make(chan error, 1)}
	go func() {
		f.done <- l.Follow(ctx, from, func(e server.Entry) error {
			f.mu.Lock()
			e.Data = append([]byte(nil), e.Data...)
			f.entries = append(f.entries, e)
			f.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *follower) stop() {
	f.cancel()
	<-f.done
	f.done <- context.Canceled // for a second stop
}

// replayed returns what was applied once n entries were, or after a
// while.
func (f *follower) replayed(n int) []server.Entry {
	deadline := time.Now().Add(10 * time.Second)
	for len(f.got()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return f.got()
}

func (f *follower) got() []server.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]server.Entry(nil), f.entries...)
}

func open(t *testing.T, dir string) *disklog.Log {
	t.Helper()
	l, err := disklog.Open(disklog.Config{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *disklog.Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), fmt.Sprint("id-", i), []byte(fmt.Sprint("command ", i))); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// check says what is wrong with entries, which should be entries first
// to first+n-1, as appendN made them.
func check(entries []server.Entry, first, n int) error {
	if len(entries) != n {
		return fmt.Errorf("%d entries; want %d", len(entries), n)
	}
	var last time.Time
	for i, e := range entries {
		k := first + i
		if e.Seq != uint64(k) || e.ID != fmt.Sprint("id-", k) || string(e.Data) != fmt.Sprint("command ", k) {
			return fmt.Errorf("entry %d is seq %d id %q %q", k, e.Seq, e.ID, e.Data)
		}
		if e.Time.Before(last) {
			return fmt.Errorf("entry %d's time %v goes back from %v", k, e.Time, last)
		}
		last = e.Time
	}
	return nil
}

// What was appended is applied as it is, and found again, the same, by the
// next process: over several segments.
func TestAppendFollowReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	f := follow(t, l, 1)
	appendN(t, l, 1, 500) // several 4 KiB segments
	if err := check(f.got(), 1, 500); err != nil {
		t.Fatalf("applied: %v", err)
	}
	f.stop()
	l.Close()

	l = open(t, dir)
	if last, _ := l.LastSeq(context.Background()); last != 500 {
		t.Fatalf("LastSeq after reopening = %d; want 500", last)
	}
	f = follow(t, l, 1)
	appendN(t, l, 501, 10)
	if err := check(f.got(), 1, 510); err != nil {
		t.Fatalf("replayed and applied after reopening: %v", err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "log", "*.wal")); len(segs) < 5 {
		t.Fatalf("%d segments; want several (the test means to cross them)", len(segs))
	}
}

// Appends from many goroutines at once all get in, each once, numbered
// without a gap, and each is applied before its Append returns.
func TestConcurrentAppends(t *testing.T) {
	l := open(t, t.TempDir())
	var applied atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, 1, func(server.Entry) error { applied.Add(1); return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				before := applied.Load()
				if err := l.Append(context.Background(), fmt.Sprint(g, "-", i), []byte("x")); err != nil {
					t.Error(err)
					return
				}
				if applied.Load() <= before {
					t.Error("Append returned before its entry was applied")
					return
				}
			}
		})
	}
	wg.Wait()
	if last, _ := l.LastSeq(context.Background()); last != 800 || applied.Load() != 800 {
		t.Fatalf("LastSeq %d, applied %d; want 800 and 800", last, applied.Load())
	}
}

// A record cut short at the end of the last segment is a write a crash
// interrupted: it is cut off, and the log goes on from the one before.
func TestTornTailCutOff(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	f := follow(t, l, 1)
	appendN(t, l, 1, 20)
	f.stop()
	l.Close()
	last := lastSegment(t, dir)
	info, _ := os.Stat(last)
	if err := os.Truncate(last, info.Size()-3); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir)
	f = follow(t, l, 1)
	appendN(t, l, 20, 1) // takes the place of the lost 20th
	if err := check(f.got(), 1, 20); err != nil {
		t.Fatalf("after a torn last record: %v", err)
	}
}

// Damage anywhere but a torn end is never skipped: Open fails, naming the
// file, whether a byte of a record changed or a segment is missing.
func TestDamageRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file the error must name
	}{
		{"flipped byte", func(t *testing.T, dir string) string {
			segs := segments(t, dir)
			b, _ := os.ReadFile(segs[0])
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(segs[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
			return segs[0]
		}},
		{"missing segment", func(t *testing.T, dir string) string {
			segs := segments(t, dir)
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
			return segs[2]
		}},
		{"snapshot", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "snapshot")
			b, _ := os.ReadFile(path)
			b[len(b)-1] ^= 1
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, dir)
			f := follow(t, l, 1)
			appendN(t, l, 1, 300)
			if err := l.SaveSnapshot(context.Background(), 10, []byte("the state as of entry 10")); err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 301, 300)
			f.stop()
			l.Close()
			path := tc.damage(t, dir)
			l, err := disklog.Open(disklog.Config{Dir: dir, SegmentBytes: 4 << 10})
			if err == nil {
				l.Close()
				t.Fatalf("Open of a damaged log succeeded; want an error naming %s", path)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v; want it to name %s", err, path)
			}
		})
	}
}

// A snapshot lets the log drop the segments before it, and is what the
// next process starts from.
func TestSnapshotDropsOldSegments(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	f := follow(t, l, 1)
	appendN(t, l, 1, 400)
	before := len(segments(t, dir))
	if err := l.SaveSnapshot(context.Background(), 400, []byte("state@400")); err != nil {
		t.Fatal(err)
	}
	if after := len(segments(t, dir)); after >= before || after > 2 {
		t.Fatalf("%d segments after a snapshot of everything, %d before; want at most 2 (the one being written)", after, before)
	}
	appendN(t, l, 401, 5)
	f.stop()
	l.Close()

	l = open(t, dir)
	snap, err := l.LoadSnapshot(context.Background())
	if err != nil || string(snap) != "state@400" {
		t.Fatalf("LoadSnapshot = %q, %v; want state@400", snap, err)
	}
	if first, _ := l.FirstSeq(context.Background()); first > 401 {
		t.Fatalf("FirstSeq = %d; want the log to hold entry 401 on", first)
	}
	f = follow(t, l, 401)
	if err := check(f.replayed(5), 401, 5); err != nil {
		t.Fatalf("replayed after the snapshot: %v", err)
	}
}

// Two processes may not write one log: the second Open fails at once,
// saying the directory is in use.
func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	l, err := disklog.Open(disklog.Config{Dir: dir})
	if err == nil {
		l.Close()
		t.Fatal("a second Open of one data directory succeeded")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v; want it to say the directory is in use", err)
	}
}

// A write that fails (a full disk) refuses the entries it carried, with
// server.ErrNotAppended, leaves nothing of them behind, and once writes
// work again the log goes on with no gap, before and after a restart.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	f := follow(t, l, 1)
	appendN(t, l, 1, 10)
	var full atomic.Bool
	full.Store(true)
	disklog.FailWrites(l, full.Load)
	err := l.Append(context.Background(), "refused", []byte("lost"))
	if !errors.Is(err, server.ErrNotAppended) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Append on a full disk: %v; want ErrNotAppended saying there is no space", err)
	}
	full.Store(false)
	appendN(t, l, 11, 10)
	if err := check(f.got(), 1, 20); err != nil {
		t.Fatalf("after the disk had space again: %v", err)
	}
	f.stop()
	l.Close()
	l = open(t, dir)
	f = follow(t, l, 1)
	if err := check(f.replayed(20), 1, 20); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "log", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments: %v", err)
	}
	return segs
}

func lastSegment(t *testing.T, dir string) string {
	segs := segments(t, dir)
	return segs[len(segs)-1]
}

// A follower that stops while an append is being written (a node's Run
// ending as a request comes in) leaves the entry written, not applied:
// Append returns, and the next follower applies it with the rest.
func TestFollowerStopsDuringAWrite(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	f := follow(t, l, 1)
	appendN(t, l, 1, 3)
	held, release := make(chan struct{}), make(chan struct{})
	disklog.HoldWrites(l, held, release)
	appended := make(chan error, 1)
	go func() { appended <- l.Append(context.Background(), "4", []byte("4")) }()
	<-held
	f.stop()
	close(release)
	if err := <-appended; err != nil {
		t.Fatalf("Append while the follower stopped: %v; want it written", err)
	}
	if got := len(f.got()); got != 3 {
		t.Fatalf("the stopped follower applied %d entries; want the 3 before it stopped", got)
	}
	f = follow(t, l, 4)
	if got := f.replayed(1); len(got) != 1 || got[0].Seq != 4 || string(got[0].Data) != "4" {
		t.Fatalf("the next follower from 4 applied %v; want entry 4", got)
	}
}
