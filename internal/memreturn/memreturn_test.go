package memreturn_test

import (
	"runtime"
	"runtime/debug"
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

// cfg is a Watcher's config for these tests: a burst is two collections.
var cfg = memreturn.Config{Threshold: 32 << 20, BurstCycles: 2}

// onlyExplicitCollections turns the collector's own pacing off for the
// test, so that the collections a Watcher sees are the test's own, and a
// look sees exactly as many as the test means it to.
func onlyExplicitCollections(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// afterBurst leaves the heap as a join storm does: a large live heap while
// it ran (64 MiB, which has the runtime set its next collection far off),
// collected more than once, then all of it garbage, with 48 MiB more
// allocated and dropped since the last collection. w has taken its look
// at the burst.
func afterBurst(t *testing.T, w *memreturn.Watcher) {
	t.Helper()
	onlyExplicitCollections(t)
	w.Step() // before the burst
	alloc(64)
	runtime.GC()
	runtime.GC()
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step right after the program collected returned %d bytes; want a busy program left alone", freed)
	}
	sink = nil
	alloc(48)
	sink = nil
}

func TestQuietProgramGetsItsBurstBack(t *testing.T) {
	w := memreturn.NewWatcher(cfg)
	afterBurst(t, w)
	freed, _, ok := w.Step()
	if !ok || freed < 64<<20 {
		t.Fatalf("Step after a burst = %d bytes freed, %v; want at least 64 MiB returned", freed, ok)
	}
	// Garbage built up slowly after it, as under a light load, is the
	// collector's business: once per burst.
	alloc(48)
	sink = nil
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step after returning memory once returned %d more bytes with no burst since; want it left alone", freed)
	}
}

func TestBusyProgramIsLeftAlone(t *testing.T) {
	w := memreturn.NewWatcher(cfg)
	afterBurst(t, w)
	runtime.GC() // the program's own collection: it is not quiet
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step after the program collected returned %d bytes; want it left alone", freed)
	}
}

func TestBelowThresholdIsLeftAlone(t *testing.T) {
	w := memreturn.NewWatcher(memreturn.Config{Threshold: 1 << 40, BurstCycles: cfg.BurstCycles})
	afterBurst(t, w)
	if freed, _, ok := w.Step(); ok {
		t.Fatalf("Step with about 112 MiB to return under a 1 TiB threshold returned %d bytes; want it left alone", freed)
	}
}

// A program under a light steady load collects now and then (one
// collection between looks) and builds garbage up in between: it is never
// through a burst, and is left alone however much garbage it holds.
func TestSteadyProgramIsLeftAlone(t *testing.T) {
	onlyExplicitCollections(t)
	w := memreturn.NewWatcher(cfg)
	w.Step()
	for range 4 {
		alloc(64)
		sink = nil
		runtime.GC() // one collection per look: below BurstCycles
		alloc(48)
		sink = nil
		if freed, _, ok := w.Step(); ok {
			t.Fatalf("Step under a steady load returned %d bytes; want it left alone", freed)
		}
		if freed, _, ok := w.Step(); ok { // quiet, but no burst before
			t.Fatalf("Step in a quiet spell of a steady load returned %d bytes; want it left alone", freed)
		}
	}
}
