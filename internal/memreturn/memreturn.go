// Package memreturn gives the operating system back the memory that a
// burst of work leaves behind in a Go program that then goes quiet.
//
// Go collects garbage when the heap grows, and returns freed memory to the
// operating system gradually, down to what its last collection set as the
// heap's goal. A chat server after a join storm is the worst case for
// that: the storm (every join a snapshot of everyone, every join told to
// everyone) leaves hundreds of megabytes of garbage and pooled buffers,
// then the sessions sit idle, nothing allocates, no collection runs, and
// the memory stays in the process's RSS for minutes (Go forces a
// collection only every two minutes, and sync.Pool's caches need two).
// An operator sees a server that looks twice its size.
//
// Run watches for exactly that: a burst (a look that saw several
// collections) followed by quiet (a look that saw none), with more than a
// threshold of garbage and free heap. Then, once per burst, it collects
// twice (the first moves sync.Pool's caches aside, the second frees them)
// and returns what is free (debug.FreeOSMemory). A busy program collects
// on its own, and one that is steadily lightly loaded (a collection now
// and then, garbage building up slowly in between, as the collector
// intends) is never a burst: both are left alone.
package memreturn

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config is when memory is returned.
type Config struct {
	// Every is how often the heap is looked at, and how long the program
	// must have gone without a collection before memory is returned.
	Every time.Duration
	// Threshold is how many bytes of garbage and free heap are worth two
	// collections.
	Threshold uint64
	// BurstCycles is how many collections one look must see for the
	// program to have been through a burst.
	BurstCycles uint64
}

// DefaultConfig looks every 10 seconds and returns 64 MiB or more after
// a look that saw 3 collections or more.
func DefaultConfig() Config {
	return Config{Every: 10 * time.Second, Threshold: 64 << 20, BurstCycles: 3}
}

// Run returns memory as Config says until ctx ends. log gets a record each
// time it does.
func Run(ctx context.Context, cfg Config, log *slog.Logger) {
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	w := NewWatcher(cfg)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if freed, took, ok := w.Step(); ok {
			log.Info("returned memory left by a burst of work to the operating system", "bytes", freed, "took", took)
		}
	}
}

// Watcher is Run's state between two looks; Step is one look.
type Watcher struct {
	cfg     Config
	samples []metrics.Sample
	cycles  uint64 // collections seen at the last look
	burst   bool   // a look since the last return saw a burst
}

// NewWatcher returns a Watcher whose first look counts the collections
// from now on.
func NewWatcher(cfg Config) *Watcher {
	w := &Watcher{cfg: cfg, samples: []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"}, // live objects and garbage not yet swept
		{Name: "/gc/heap/live:bytes"},                // live at the last collection
		{Name: "/memory/classes/heap/free:bytes"},    // free, not yet returned
		{Name: "/memory/classes/heap/released:bytes"},
	}}
	metrics.Read(w.samples)
	w.cycles = w.value(0)
	return w
}

// Step looks at the heap once and returns memory if the program has been
// quiet since the last look, after a burst, and holds more than the
// threshold. It reports how much more the program has returned since
// before it started, and how long that took.
func (w *Watcher) Step() (freed uint64, took time.Duration, ok bool) {
	metrics.Read(w.samples)
	cycles := w.value(0)
	quiet := cycles == w.cycles
	if cycles-w.cycles >= w.cfg.BurstCycles {
		w.burst = true
	}
	w.cycles = cycles
	objects, live, free, released := w.value(1), w.value(2), w.value(3), w.value(4)
	var idle uint64 // garbage and free heap
	if objects > live {
		idle = objects - live
	}
	idle += free
	if !quiet || !w.burst || idle < w.cfg.Threshold {
		return 0, 0, false
	}
	w.burst = false // once per burst
	start := time.Now()
	runtime.GC()         // sync.Pool's caches move to its victim cache
	debug.FreeOSMemory() // which this collection frees, and all that is free goes back
	took = time.Since(start)
	metrics.Read(w.samples)
	w.cycles = w.value(0) // its own collections are not the program's
	if now := w.value(4); now > released {
		freed = now - released
	}
	return freed, took, true
}

func (w *Watcher) value(i int) uint64 {
	if w.samples[i].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return w.samples[i].Value.Uint64()
}
