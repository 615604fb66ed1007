package memreturn_test

import (
	"runtime"
	"testing"

	"github.com/chatd/chatd/internal/memreturn"
)

// sink keeps allocations reachable until a test lets go of them.
var sink [][]byte

func alloc(mib int) {
	for range mib {
		sink = append(sink, make([]byte, 1<<20))
	}
}

// afterBurst leaves the heap as a join storm does: a large live heap while
// it ran (64 MiB, which has the runtime set its next collection far off),
// then all of it garbage, with 48 MiB more allocated and dropped since
// the last collection. w has taken its first look after that collection.
func afterBurst(t *testing.T, w *memreturn.Watcher) {
	t.Helper()
	alloc(64)
	runtime.GC()
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step right after the program collected returned %d bytes; want a busy program left alone", freed)
	}
	sink = nil
	alloc(48)
	sink = nil
}

func TestQuietProgramGetsItsBurstBack(t *testing.T) {
	w := memreturn.NewWatcher(memreturn.Config{Threshold: 32 << 20})
	afterBurst(t, w)
	freed, _, ok := w.Step()
	if !ok || freed < 64<<20 {
		t.Fatalf("Step after a burst = %d bytes freed, %v; want at least 64 MiB returned", freed, ok)
	}
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step right after returning memory returned %d more bytes; want nothing to do", freed)
	}
}

func TestBusyProgramIsLeftAlone(t *testing.T) {
	w := memreturn.NewWatcher(memreturn.Config{Threshold: 32 << 20})
	afterBurst(t, w)
	runtime.GC() // the program's own collection: it is not quiet
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step after the program collected returned %d bytes; want it left alone", freed)
	}
}

func TestBelowThresholdIsLeftAlone(t *testing.T) {
	w := memreturn.NewWatcher(memreturn.Config{Threshold: 1 << 40})
	afterBurst(t, w)
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step with about 112 MiB to return under a 1 TiB threshold returned %d bytes; want it left alone", freed)
	}
}
